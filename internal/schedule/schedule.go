package schedule

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/artifact"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/constraint"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/suggest"
	"github.com/talonhq/talon/internal/trigger"
)

// Schedule is a loaded, valid schedule.
type Schedule struct {
	Jobs      []*Job // sorted by name
	ByName    map[string]*Job
	Calendars map[string]*calendar.Calendar
	Resources map[string]Resource
	Files     []string

	treeOnce sync.Once
	tree     *resource.Tree
}

// Tree is the schedule's resources as a tree, built once.
func (s *Schedule) Tree() *resource.Tree {
	s.treeOnce.Do(func() {
		nodes := make([]resource.Node, 0, len(s.Resources))
		for _, r := range s.Resources {
			nodes = append(nodes, resource.Node{Path: r.Path, Capacity: r.Capacity, Attributes: r.Attributes, Per: r.Per})
		}
		s.tree = resource.NewTree(nodes)
	})
	return s.tree
}

// JobNotFound is the error for a job named name that s lacks: not_found,
// with the nearest job name as a hint.
func (s *Schedule) JobNotFound(name string) error {
	names := make([]string, len(s.Jobs))
	for i, j := range s.Jobs {
		names[i] = j.Name
	}
	hint := ""
	if h := suggest.DidYouMean(name, names); h != "" {
		hint = " (" + h + ")"
	}
	return talon.Errorf(talon.ENOTFOUND, "job %q not found%s", name, hint)
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
	// Requests are the job's resource requests, in schedule order, with
	// {{environment}} unresolved; Job.Resources sums their counts by path.
	Requests []resource.Request
	// Declared are the job's declared artifacts (Job.Artifacts) with
	// their patterns compiled, sorted by name.
	Declared []DeclaredArtifact
}

// DeclaredArtifact is one artifact a job's runs produce.
type DeclaredArtifact struct {
	Name    string
	Pattern artifact.Pattern
}

// Periods is the periods the job is run for: its period type, zone,
// business calendar and environment. The engine and `talon calendar`
// both find a fire's period through it.
func (j *Job) Periods() calendar.Periods {
	return calendar.Periods{Type: j.Period.Type, Location: j.Location, Calendar: j.Calendar, Environment: j.Environment}
}

// Wants is what a run of j in environment env asks of the resource tree:
// its requests with {{environment}} resolved; nil when it asks for none.
func (j *Job) Wants(env string) []resource.Request {
	if len(j.Requests) == 0 {
		return nil
	}
	reqs := make([]resource.Request, len(j.Requests))
	for i, r := range j.Requests {
		reqs[i] = r.Resolve(env)
	}
	return reqs
}

// Resource is one declared resource node.
type Resource struct {
	Path       string
	Capacity   int
	Attributes map[string]string
	// Per makes the resource consumable per period of this type (its
	// units return when the next period starts, not when a run ends).
	Per talon.PeriodType
}

// Summary is the one line `talon validate` prints for a valid schedule,
// such as "ok: 5 jobs (3 time triggers, 2 completion triggers), 1
// calendar, 1 resource in 2 files".
func (s *Schedule) Summary() string {
	var timeTriggers, afterTriggers int
	for _, j := range s.Jobs {
		for _, t := range j.Triggers {
			if t.After != "" {
				afterTriggers++
			} else {
				timeTriggers++
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ok: %s (%s, %s), %s, %s in %s",
		plural(len(s.Jobs), "job"),
		plural(timeTriggers, "time trigger"),
		plural(afterTriggers, "completion trigger"),
		plural(len(s.Calendars), "calendar"),
		plural(len(s.Resources), "resource"),
		plural(len(s.Files), "file"))
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// jsonMarshal is how params become TALON_PARAMS; the loader calls it so
// values JSON cannot carry (.inf, .nan) are reported with a position.
func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
