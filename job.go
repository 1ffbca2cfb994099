package talon

import (
	"fmt"
	"strings"
	"time"
)

// PeriodType is the kind of interval a job is run for.
type PeriodType string

// Period types (docs/model.md#periods-and-keys).
const (
	Hourly    PeriodType = "hourly"
	Daily     PeriodType = "daily"
	Weekly    PeriodType = "weekly"
	Monthly   PeriodType = "monthly"
	Quarterly PeriodType = "quarterly"
	Yearly    PeriodType = "yearly"
	Oneshot   PeriodType = "oneshot"
)

// PeriodTypes lists the period types in order of length.
var PeriodTypes = []PeriodType{Hourly, Daily, Weekly, Monthly, Quarterly, Yearly, Oneshot}

// Period is one interval of a period type in a zone: [Start, End). A
// oneshot period has a Name instead of bounds.
type Period struct {
	Type        PeriodType
	Start       time.Time // in the job's zone
	End         time.Time // exclusive
	Name        string    // oneshot only
	Environment string
}

// Key is the period's stable name, such as "daily/2026-11-26",
// "weekly/2026-W48", "monthly/2026-11", "quarterly/2026-Q4",
// "oneshot/NAME", prefixed by "ENV:" when the period has an environment.
// It comes from calendar dates in the period's zone, so a 23- or 25-hour
// day is still exactly one key.
func (p Period) Key() string {
	var b strings.Builder
	if p.Environment != "" {
		b.WriteString(p.Environment)
		b.WriteByte(':')
	}
	b.WriteString(string(p.Type))
	b.WriteByte('/')
	s := p.Start
	switch p.Type {
	case Hourly:
		b.WriteString(s.Format("2006-01-02T15"))
	case Daily:
		b.WriteString(s.Format("2006-01-02"))
	case Weekly:
		y, w := s.ISOWeek()
		fmt.Fprintf(&b, "%04d-W%02d", y, w)
	case Monthly:
		b.WriteString(s.Format("2006-01"))
	case Quarterly:
		fmt.Fprintf(&b, "%04d-Q%d", s.Year(), (int(s.Month())-1)/3+1)
	case Yearly:
		fmt.Fprintf(&b, "%04d", s.Year())
	case Oneshot:
		b.WriteString(p.Name)
	}
	return b.String()
}

// Job is a named unit of work in the schedule.
type Job struct {
	Name        string
	Description string
	Period      PeriodSpec
	// Timezone is the IANA name of the job's zone ("UTC" by default);
	// Location is that zone, loaded once when the schedule is read.
	Timezone    string
	Location    *time.Location
	Environment string
	// Group gathers related jobs where they are shown (the dashboard's
	// grid lists them together, under their environment); it changes
	// nothing about how they run.
	Group       string
	Triggers    []TriggerSpec
	Constraints []ConstraintSpec
	Resources   map[string]int
	Executor    string
	Command     []string
	Env         map[string]EnvValue
	Dir         string
	// Host is where a run of an ssh job goes when it holds no hosts/...
	// resource: HOST or HOST:PORT. Other executors refuse it.
	Host string
	// SSH overrides the ssh executor's settings for the job's runs; nil
	// for none. Other executors refuse it.
	SSH     *SSHOptions
	Params  map[string]any
	Poll    time.Duration // default 1m
	Timeout time.Duration // zero: none
	Retries RetryPolicy
	Catchup CatchupPolicy
	// CatchupWindow bounds how far back missed fires are considered; zero
	// means no bound.
	CatchupWindow time.Duration
	Priority      int
	// Artifacts are the artifacts the job's runs produce, by name: URL
	// templates with placeholders such as {{period}} (internal/artifact).
	// A run that succeeds without one of them says so in its reason.
	Artifacts map[string]string
	// Function is the Go function a job of the inprocess executor runs,
	// by the name it was registered under: the schedule's function: key,
	// else the first word of its command: (whose other words are the
	// function's arguments), else the job's own name. The loader fills
	// it in for inprocess jobs; other executors leave it empty.
	Function string
}

// SSHOptions are a job's overrides of the ssh executor's settings
// (executors: {ssh: …} in talon.yaml); zero fields keep them.
type SSHOptions struct {
	User    string
	KeyFile string // a private key file (absolute path)
	Port    int    // when the host's address has none; default 22
}

// EnvValue is the value of one variable of a job's env: a literal, or a
// secret read each time a run starts — from a file (so a rotated secret
// is picked up) or from the server's own environment. Secret values are
// masked ("***") wherever Talon shows them, the run's log included.
type EnvValue struct {
	Value string // literal
	File  string // secret: the content of this file (absolute path), without one trailing newline
	Env   string // secret: the server's environment variable of this name
}

// Secret reports whether the value is read at run start and masked.
func (v EnvValue) Secret() bool { return v.File != "" || v.Env != "" }

// PeriodSpec says which periods a job is run for.
type PeriodSpec struct {
	Type     PeriodType
	Calendar string // optional business calendar name
}

// PeriodOffset maps a fire instant's period to the run's period.
type PeriodOffset string

// Period offsets: the period containing the fire, or the one before it
// ("run at 06:00 for yesterday").
const (
	PeriodSame     PeriodOffset = "same"
	PeriodPrevious PeriodOffset = "previous"
)

// TriggerSpec is one trigger of a job: a time schedule or the completion
// of another job. External triggers (API, CLI) need no spec.
type TriggerSpec struct {
	// ID names the trigger in run rows; it is stable across reloads as long
	// as the trigger itself does not change (e.g. "schedule:30 6 * * 1-5",
	// "after:extract").
	ID string
	// Kind names a registered trigger kind for Schedule; empty is the
	// built-in time grammar (cron, @ descriptors, English).
	Kind     string
	Schedule string
	After    string
	Period   PeriodOffset
}

// RetryPolicy says how often and after how long a failed run is retried.
// Failures of execution are retried (exit status, could not start, lost);
// a timeout only when Timeouts is set, since a run that ran out of time
// usually runs out again; an operator's cancel never is.
type RetryPolicy struct {
	Max      int
	Delay    time.Duration
	Timeouts bool
}

// CatchupPolicy says what happens to time-trigger fires missed while no
// scheduler was running.
type CatchupPolicy string

// Catch-up policies; the default is latest.
const (
	CatchupAll    CatchupPolicy = "all"
	CatchupLatest CatchupPolicy = "latest"
	CatchupNone   CatchupPolicy = "none"
)

// ConstraintSpec is one constraint of a job as written in the schedule:
// its kind (the registry name, e.g. "not_before") and its value decoded
// from YAML into plain Go values (string, bool, int, float64, []any,
// map[string]any). The constraint package compiles it.
type ConstraintSpec struct {
	Kind  string
	Value any
}

// Internal trigger ids for runs not created by a schedule entry.
const (
	TriggerAPI   = "api"   // external: API, CLI, webhook
	TriggerRetry = "retry" // a retry of a failed run
)
