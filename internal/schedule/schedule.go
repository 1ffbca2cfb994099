// Package schedule reads schedule YAML (one file or a directory of them)
// into jobs, keeping positions so every error reads file:line:col.
package schedule

import (
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/constraint"
	"github.com/talonhq/talon/internal/trigger"
)

// Schedule is a loaded, valid schedule.
type Schedule struct {
	Jobs      []*Job            // sorted by name
	ByName    map[string]*Job
	Calendars map[string]*calendar.Calendar
	Resources map[string]Resource
	Files     []string
}

// Job is a job with its triggers and constraints compiled.
type Job struct {
	talon.Job
	// Times holds the compiled trigger of each Job.Triggers entry that has
	// a Schedule; it is nil for completion triggers.
	Times []trigger.Trigger
	// Checks are the compiled constraints, in the order of
	// Job.Constraints.
	Checks []constraint.Constraint
	// Calendar is the job's period calendar, if any.
	Calendar *calendar.Calendar
}

// Resource is one declared resource node.
type Resource struct {
	Path       string
	Capacity   int
	Attributes map[string]string
}
