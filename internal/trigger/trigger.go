package trigger

import (
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// Trigger yields fire instants.
type Trigger interface {
	// Next returns the first fire instant strictly after after, or the
	// zero time if the trigger never fires again.
	Next(after time.Time) time.Time
}

// Options are what an expression is compiled against.
type Options struct {
	// Location is the zone of the expression when it names none (the
	// job's zone); nil means UTC.
	Location *time.Location
	// Calendars are the business calendars of the schedule, by name.
	Calendars map[string]*calendar.Calendar
	// DST is the policy when the expression has no dst qualifier; the
	// zero value is Talon's default (shift, overlap first).
	DST calendar.DSTPolicy
	// ID names the trigger for jitter: the delay of each fire is a hash of
	// ID and the nominal instant, so it is the same in every process and
	// differs between jobs that share an expression. Use something stable,
	// such as "JOB/INDEX".
	ID string
}

// Error is a parse error with its position in the expression.
type Error struct {
	Offset int    // byte offset in the expression, 0-based
	Msg    string // what was wrong and what was expected
	Hint   string // optional: "did you mean …"
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Parse compiles expr into a *Spec. Errors are *Error. See the package
// documentation for the grammar.
func Parse(expr string, opt Options) (Trigger, error) {
	s, err := ParseSpec(expr, opt)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}
