package trigger

import (
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// Spec is a compiled trigger: the model that every front end (cron,
// descriptors, and the English form) compiles to (TRIGGERS.md §1, §6). It
// is a union of wall-clock rules, elapsed-time grids and one-shot instants,
// under spec-level settings (zone, DST policy). A Spec is immutable after
// Parse and safe for concurrent use; Next allocates nothing.
type Spec struct {
	loc   *time.Location
	dst   calendar.DSTPolicy
	rules []rule
	grids []grid
	once  []int64 // Unix seconds
}

var _ Trigger = (*Spec)(nil)

// Location returns the zone the spec's wall times are read in.
func (s *Spec) Location() *time.Location { return s.loc }

// DST returns the spec's DST policy.
func (s *Spec) DST() calendar.DSTPolicy { return s.dst }

// rule is a date selector × a time-of-day generator: on every day the
// selector matches, the generator's wall times are nominal fire times.
type rule struct {
	days  daySelector
	times timeGen
}

// daySelector picks the dates of a rule. Dates are day numbers (days since
// 1970-01-01, calendar.Date.Days) so the walk is integer arithmetic.
type daySelector interface {
	// nextDay returns the first day number ≥ n that matches, or a number
	// greater than limit if none does up to limit.
	nextDay(n, limit int) int
}

// timeGen yields the wall times of a rule's day, as seconds after that
// day's midnight. The English form's windows may cross midnight, so values
// up to 2·86400 are allowed; cron stays below 86400.
type timeGen interface {
	// next returns the smallest wall second ≥ s, or false if none.
	next(s int64) (int64, bool)
}

// grid is an elapsed-time cadence: instants epoch + k·every + phase, in
// whole seconds. It ignores zones and DST (TRIGGERS.md §4.7).
type grid struct {
	every, phase int64
}
