package api

import (
	"context"
	"io"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

// Backend is what the HTTP handlers serve; the engine implements it. It
// is small and lives next to its consumer so handlers can be tested with
// any implementation, and so authentication and new routes can be added
// around it without touching the engine.
//
// Errors are *talon.Error (code invalid, not_found, conflict, unavailable)
// when the user can act on them; any other error is an internal error.
type Backend interface {
	Jobs(ctx context.Context) ([]JobInfo, error)
	Runs(ctx context.Context, f store.RunFilter) ([]talon.Run, error)
	// Run returns a run with its latest decisions and history.
	Run(ctx context.Context, id int64) (RunDetail, error)
	Periods(ctx context.Context, f store.PeriodFilter) ([]store.PeriodRow, error)
	// Trigger creates a run of job from an external request. created is
	// false when the idempotency key matched an existing run.
	Trigger(ctx context.Context, job string, req TriggerRequest) (run talon.Run, created bool, err error)
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
	// Audit lists the audit, newest first.
	Audit(ctx context.Context, f store.AuditFilter) ([]talon.AuditEntry, error)
	// RecordAudit records one operation in the audit (the server does,
	// for every operation it serves).
	RecordAudit(ctx context.Context, a talon.AuditEntry) error
	// Logs opens the run's log (stdout and stderr).
	Logs(ctx context.Context, id int64) (io.ReadCloser, error)
	// Reload re-reads the schedule; an invalid schedule keeps the old one
	// and the error says why.
	Reload(ctx context.Context) (summary string, err error)
	SetProgress(ctx context.Context, id int64, p talon.Progress) error
	// AddArtifact records an artifact of a run, with an optional name.
	AddArtifact(ctx context.Context, id int64, url, name string) (talon.Artifact, error)
	// Artifacts lists artifacts, newest first.
	Artifacts(ctx context.Context, f store.ArtifactFilter) ([]talon.Artifact, error)
	// PeriodRange lists the keys of job's periods from one key to another,
	// inclusive, following the job's zone and calendar (for backfills).
	PeriodRange(ctx context.Context, job, from, to string) ([]string, error)
	// Resources is the resource tree with what is used, by whom, and
	// who waits.
	Resources(ctx context.Context) (ResourcesView, error)
	// Health is nil when the scheduler and its store are working;
	// otherwise an *talon.Error with code unavailable.
	Health(ctx context.Context) error
}

// JobInfo describes one job of the loaded schedule.
type JobInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Period      string   `json:"period"`
	Calendar    string   `json:"calendar,omitempty"`
	Timezone    string   `json:"timezone"`
	Environment string   `json:"environment,omitempty"`
	Executor    string   `json:"executor"`
	Triggers    []string `json:"triggers"`
	Constraints []string `json:"constraints"`
	// Next is the next time-trigger fire (RFC 3339), if any.
	Next string `json:"next,omitempty"`
	// Errors says why a trigger stopped firing (a business calendar that
	// ends before its next fire), so operators see it.
	Errors []string `json:"errors,omitempty"`
	// Paused says who paused the job, when and why; absent when it is
	// not paused.
	Paused *talon.Pause `json:"paused,omitempty"`
}

// RunDetail is a run with why it is where it is.
type RunDetail struct {
	talon.Run
	Decisions []talon.Decision `json:"decisions"`
	Events    []talon.Event    `json:"events"`
	// Resources is what the run holds or waits for; nil when its job
	// asks for none.
	Resources *RunResources `json:"resources,omitempty"`
}

// RunResources is what one run holds and wants.
type RunResources struct {
	Wants []resource.Request `json:"wants"`
	// Held is what the run holds now; for a finished run, what it held
	// (released when it ended).
	Held []resource.Hold `json:"held"`
	// Waiting is why the run waits in the resource queue, if it does.
	Waiting string `json:"waiting,omitempty"`
}

// ResourcesView is GET /api/v1/resources.
type ResourcesView struct {
	Resources []ResourceInfo `json:"resources"`
	// Waiters is the resource queue, in the order it is served.
	Waiters []resource.Waiter `json:"waiters"`
}

// ResourceInfo is one node of the tree with its use.
type ResourceInfo struct {
	resource.Node
	// Declared is false for a node a reload removed while runs held it.
	Declared bool `json:"declared"`
	Used     int  `json:"used"`
	// Holders are the holds counted now.
	Holders []resource.Hold `json:"holders"`
	// Waiting lists the queued runs that could be served by this node.
	Waiting []int64 `json:"waiting"`
	// Periods is, for a consumable node, the units used in each period.
	Periods map[string]int `json:"periods,omitempty"`
}

// TriggerRequest is the body of POST /api/v1/jobs/{name}/trigger.
type TriggerRequest struct {
	Period string            `json:"period,omitempty"` // default: the period containing now
	Params map[string]string `json:"params,omitempty"`
	Key    string            `json:"key,omitempty"` // idempotency key
}
