package trigger

import (
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// Spec is a compiled trigger: the model that every front end (cron,
// descriptors, and the English form) compiles to (docs/triggers.md). It
// is a union of wall-clock rules, elapsed-time grids and one-shot instants,
// under spec-level settings: zone, DST policy, business calendars, holiday
// adjustment, exclusions, start and end bounds, and jitter. A Spec is
// immutable after Parse and safe for concurrent use; Next allocates
// nothing.
type Spec struct {
	loc   *time.Location
	dst   calendar.DSTPolicy
	rules []rule
	grids []grid
	once  []int64 // Unix seconds

	cals     *calSet    // the using calendars; never nil
	adjust   adjustment // holiday adjustment of rule dates
	exceptH  bool       // except holidays
	exceptD  []int      // except on DATE…: day numbers, sorted
	start    int64      // inclusive bound on nominal instants (Unix seconds)
	end      int64      // inclusive bound
	hasStart bool
	hasEnd   bool
	jitter   int64 // seconds; 0: none
	id       string

	// What the expression said explicitly, so String prints it back and
	// nothing the options supplied.
	zoneSet bool
	dstSet  bool
}

var _ Trigger = (*Spec)(nil)

// Location returns the zone the spec's wall times are read in.
func (s *Spec) Location() *time.Location { return s.loc }

// Jitter returns the bound of the spec's jitter, zero when it has none.
// Options.ID matters only to a spec with jitter: one without may be
// shared by every job that compiles the same expression in the same zone.
func (s *Spec) Jitter() time.Duration { return time.Duration(s.jitter) * time.Second }

// DST returns the spec's DST policy.
func (s *Spec) DST() calendar.DSTPolicy { return s.dst }

// Calendars returns the names of the business calendars the spec uses
// (its using qualifier), or nil for the default weekends-only calendar.
func (s *Spec) Calendars() []string {
	if s.cals.implicit {
		return nil
	}
	names := make([]string, len(s.cals.cals))
	for i, c := range s.cals.cals {
		names[i] = c.Name
	}
	return names
}

// rule is a date selector × a time-of-day generator: on every day the
// selector matches, the generator's wall times are nominal fire times.
type rule struct {
	days  daySelector
	times timeGen
	// text is the cron or descriptor source, for String; "" for English.
	text string
	// elapsed marks an English cadence without a window: a synchronized
	// daily grid, or an elapsed-time grid when the spec has a start
	// (decided once the qualifiers are known).
	elapsed bool
	sync    bool // written "synchronized": never elapsed
	off     int  // offset of the clause, for errors found at the end
}

// daySelector picks the dates of a rule. Dates are day numbers (days since
// 1970-01-01, calendar.Date.Days) so the walk is integer arithmetic.
type daySelector interface {
	// next returns the first day number ≥ n that matches, or a number
	// greater than limit if none does up to limit. An error (a date beyond
	// a calendar's coverage) comes with the day being looked at.
	next(n, limit int) (int, error)
}

// timeGen yields the wall times of a rule's day, as seconds after that
// day's midnight. The English form's windows may cross midnight, so values
// up to 2·86400 are allowed; cron stays below 86400.
type timeGen interface {
	// next returns the smallest wall second ≥ s, or false if none.
	next(s int64) (int64, bool)
}

// grid is an elapsed-time cadence: instants epoch + k·every + phase, in
// whole seconds. It ignores zones and DST (docs/triggers.md#dst). An English
// elapsed cadence may keep only instants whose local date days matches.
type grid struct {
	every, phase int64
	days         daySelector // nil: every date
	english      bool        // written in English (every N minutes … starting X)
}
