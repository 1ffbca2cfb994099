package view

import (
	"time"

	"github.com/talonhq/talon"
)

// GridFilter selects the dashboard's grid: the jobs of one period type
// by their most recent periods. Zero fields take the defaults.
type GridFilter struct {
	// Type is the period type of the columns (and of the jobs shown);
	// empty: the type most jobs have.
	Type talon.PeriodType
	// Count is how many periods (columns); zero: DefaultColumns of the
	// type. At most MaxColumns.
	Count int
	// End is the key (without environment) of the last column; empty:
	// the current period.
	End string
	// Job keeps the jobs whose name or group contains it.
	Job string
	// Environment keeps the jobs of one environment ("-" for the jobs of
	// none).
	Environment string
	// States keeps the jobs with a shown period whose latest run is in
	// one of them.
	States []talon.State
}

// MaxColumns bounds the periods of one grid.
const MaxColumns = 90

// DefaultColumns is how many periods of each type a grid shows by default.
var DefaultColumns = map[talon.PeriodType]int{
	talon.Hourly: 24, talon.Daily: 14, talon.Weekly: 12, talon.Monthly: 12,
	talon.Quarterly: 8, talon.Yearly: 5, talon.Oneshot: 10,
}

// Grid is the dashboard's home: jobs (rows) by periods (columns).
type Grid struct {
	Type talon.PeriodType
	// Types are the period types the schedule's jobs have, with how many
	// jobs have each, in order of length.
	Types []GridType
	// Columns are the period keys, without environment, oldest first.
	Columns []string
	// Current is the key of the current period (the newest column when
	// End is not set).
	Current string
	Groups  []GridGroup
	// Jobs is how many jobs the filter kept; Total how many jobs have
	// the grid's period type.
	Jobs, Total int
	// Environments are those of the schedule's jobs ("" for none), sorted.
	Environments []string
}

// GridType is a period type and how many jobs have it.
type GridType struct {
	Type talon.PeriodType
	Jobs int
}

// GridGroup is the rows of one environment and group.
type GridGroup struct {
	Environment string
	Group       string
	Rows        []GridRow
}

// GridRow is one job's cells.
type GridRow struct {
	Job         string
	Description string
	Paused      bool
	Cells       []GridCell // one per column
}

// GridCell is one job's period.
type GridCell struct {
	// Period is the key, environment included.
	Period string
	// NotPeriod says the column is no period of the job (a weekend or
	// holiday of its business calendar).
	NotPeriod bool
	// State is the latest run's; empty when the period has no run.
	State talon.State
	// Run is the latest run's id.
	Run int64
	// Runs is how many runs the period has (attempts, retries and
	// recorded skips alike); Counts breaks them down by state.
	Runs   int
	Counts map[talon.State]int
	// Attempt is the latest run's attempt, when it is live; Percent its
	// progress when it is running and reported one.
	Attempt int
	Percent *float64
}

// Fire is one coming fire of a job's time trigger.
type Fire struct {
	Time    time.Time
	Period  string
	Trigger string
}

// ConstraintInfo is one constraint as the schedule writes it.
type ConstraintInfo struct {
	Kind  string
	Value string // JSON
}

// JobDetail is the dashboard's job page.
type JobDetail struct {
	JobInfo
	// Fires are the next fires of its time triggers, as `talon calendar`
	// computes them.
	Fires       []Fire
	Constraints []ConstraintInfo
	// Upstreams are the jobs it waits for (after:); Downstreams those
	// that wait for it or follow it.
	Upstreams   []string
	Downstreams []string
	// History is its latest runs, newest first.
	History []talon.Run
}

// Timeline is the dashboard's period page: every run of one period, with
// the dependencies between their jobs.
type Timeline struct {
	Period string
	// Start and End bound the period (zero for oneshot periods).
	Start, End time.Time
	Runs       []TimelineRun
	// Edges are dependencies between jobs of the period: From must
	// succeed before To may start.
	Edges []Edge
	// Critical lists the run ids on the critical path: the chain of
	// dependencies that ended last, from its first run to its last.
	Critical []int64
}

// TimelineRun is one run of a timeline, with its start_by deadline when
// its job has one.
type TimelineRun struct {
	talon.Run
	// Deadline is the run's start_by, zero when its job has none; Missed
	// says it did not start by then.
	Deadline time.Time
	Missed   bool
}

// Edge is a dependency between two jobs.
type Edge struct {
	From, To string
}

// Upstream is a job another waits for or follows, with its latest run in
// the other's period (nil when it has none there).
type Upstream struct {
	Job    string
	Period string
	Run    *talon.Run
}
