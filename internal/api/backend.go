package api

import (
	"context"
	"io"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/view"
)

// Backend is what the HTTP handlers serve: reads through a Reader (the
// query service over the store) and commands through a Commander (the
// scheduler). The interfaces are small and live next to their consumer,
// so handlers can be tested with any implementation, and so that neither
// the scheduler nor the query service knows HTTP.
//
// Errors are *talon.Error (code invalid, not_found, conflict, unavailable)
// when the user can act on them; any other error is an internal error.
type Backend interface {
	Reader
	Commander
}

// Join is the Backend that reads through r and acts through c.
func Join(r Reader, c Commander) Backend {
	return struct {
		Reader
		Commander
	}{r, c}
}

// Reader answers the API's reads; *query.Service implements it.
type Reader interface {
	// Jobs lists the jobs of the schedule in force.
	Jobs(ctx context.Context) ([]view.JobInfo, error)
	// Runs lists runs, newest first.
	Runs(ctx context.Context, f view.RunFilter) ([]talon.Run, error)
	// Run returns a run with its latest decisions and history.
	Run(ctx context.Context, id int64) (view.RunDetail, error)
	// Periods lists the periods that have runs, newest first.
	Periods(ctx context.Context, f view.PeriodFilter) ([]view.PeriodInfo, error)
	// PeriodRange lists the keys of job's periods from one key to another,
	// inclusive, following the job's zone and calendar (for backfills).
	PeriodRange(ctx context.Context, job, from, to string) ([]string, error)
	// Resources is the resource tree with what is used, by whom, and
	// who waits.
	Resources(ctx context.Context) (view.ResourcesView, error)
	// Artifacts lists artifacts, newest first.
	Artifacts(ctx context.Context, f view.ArtifactFilter) ([]talon.Artifact, error)
	// Audit lists the audit, newest first.
	Audit(ctx context.Context, f view.AuditFilter) ([]talon.AuditEntry, error)
	// Logs opens the run's log (stdout and stderr).
	Logs(ctx context.Context, id int64) (io.ReadCloser, error)
	// Agents lists the remote agents, connected or gone, by name.
	Agents(ctx context.Context) ([]view.AgentInfo, error)
}

// Commander carries out the API's commands; *engine.Engine implements it.
type Commander interface {
	// Trigger creates a run of job from an external request. created is
	// false when the idempotency key matched an existing run. A created
	// run's req.Audit, when set, is recorded with it (in its transaction).
	Trigger(ctx context.Context, job string, req talon.TriggerRequest) (run talon.Run, created bool, err error)
	// Cancel cancels a run: a blocked or ready run becomes skipped, a
	// running one is killed and failed with reason "cancelled by USER".
	Cancel(ctx context.Context, id int64, by string) (talon.Run, error)
	// Retry creates a new attempt of a finished run in the same period.
	Retry(ctx context.Context, id int64, by string) (talon.Run, error)
	// Mark sets a run's outcome by hand (succeeded or failed) with a
	// reason: for when an operator fixed things outside Talon. A running
	// run is refused (conflict): cancel it first.
	Mark(ctx context.Context, id int64, state talon.State, reason, by string) (talon.Run, error)
	// Pause pauses a job (see talon.Pause); created is false when it was
	// already paused, and the answer is that pause as it was.
	Pause(ctx context.Context, job, by, reason string) (pause talon.Pause, created bool, err error)
	// Resume ends a job's pause and returns it; conflict when the job is
	// not paused.
	Resume(ctx context.Context, job, by string) (talon.Pause, error)
	// RecordAudit records one operation in the audit (the server does,
	// for every operation it serves).
	RecordAudit(ctx context.Context, a talon.AuditEntry) error
	// Reload re-reads the schedule; an invalid schedule keeps the old one
	// and the error says why.
	Reload(ctx context.Context) (summary string, err error)
	SetProgress(ctx context.Context, id int64, p talon.Progress) error
	// AddArtifact records an artifact of a run, with an optional name.
	AddArtifact(ctx context.Context, id int64, url, name string) (talon.Artifact, error)
	// Health is nil when the scheduler and its store are working;
	// otherwise an *talon.Error with code unavailable.
	Health(ctx context.Context) error
}
