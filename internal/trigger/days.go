package trigger

import (
	"fmt"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// calSet is the calendars of a spec's using qualifier: a date is a business
// day only if it is one in every calendar (the settlement convention of
// docs/triggers.md#business-calendars). Selectors share the spec's calSet by pointer because
// they are built before the qualifiers that fill it are parsed.
type calSet struct {
	cals     []*calendar.Calendar
	implicit bool // the default weekends-only calendar
}

// weekendsOnly is the calendar of a spec without using: Saturday and
// Sunday off, no holidays, unbounded.
var weekendsOnly = &calendar.Calendar{Name: "weekends-only"}

func (c *calSet) isBusiness(n int) (bool, error) {
	d := calendar.DateOfDays(n)
	for _, cal := range c.cals {
		ok, err := cal.IsBusinessDay(d)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (c *calSet) isHoliday(n int) (bool, error) {
	d := calendar.DateOfDays(n)
	for _, cal := range c.cals {
		ok, err := cal.IsHoliday(d)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// maxBusinessGap bounds the search for a business day, so a calendar with
// none is an error rather than a hang.
const maxBusinessGap = 3660

// step returns the first business day after n (dir 1) or before it (-1).
func (c *calSet) step(n, dir int) (int, error) {
	for i := 1; i <= maxBusinessGap; i++ {
		ok, err := c.isBusiness(n + dir*i)
		if err != nil {
			return n + dir*i, err
		}
		if ok {
			return n + dir*i, nil
		}
	}
	return n, fmt.Errorf("no business day within %d days of %s", maxBusinessGap, calendar.DateOfDays(n))
}

// adjustment is a holiday convention (docs/triggers.md#business-calendars).
type adjustment uint8

const (
	adjNone adjustment = iota
	adjFollowing
	adjPreceding
	adjModFollowing
	adjModPreceding
	adjSkip
)

var adjustNames = [...]string{"none", "following", "preceding", "modified following", "modified preceding", "skip"}

func (a adjustment) String() string { return adjustNames[a] }

// adjustDay moves rule date d to its fire date; ok is false when the
// convention drops it (skip).
func (s *Spec) adjustDay(d int) (f int, ok bool, err error) {
	if s.adjust == adjNone {
		return d, true, nil
	}
	b, err := s.cals.isBusiness(d)
	if err != nil || b {
		return d, err == nil, err
	}
	month := func(n int) time.Month { return calendar.DateOfDays(n).Month }
	switch s.adjust {
	case adjFollowing:
		f, err = s.cals.step(d, 1)
	case adjPreceding:
		f, err = s.cals.step(d, -1)
	case adjModFollowing:
		if f, err = s.cals.step(d, 1); err == nil && month(f) != month(d) {
			f, err = s.cals.step(d, -1)
		}
	case adjModPreceding:
		if f, err = s.cals.step(d, -1); err == nil && month(f) != month(d) {
			f, err = s.cals.step(d, 1)
		}
	case adjSkip:
		return d, false, nil
	}
	return f, err == nil, err
}

// excluded reports whether fire date f is removed by except.
func (s *Spec) excluded(f int) (bool, error) {
	for _, x := range s.exceptD {
		if x == f {
			return true, nil
		}
		if x > f {
			break
		}
	}
	if s.exceptH {
		return s.cals.isHoliday(f)
	}
	return false, nil
}

// ruleDay returns the rule's first fire date ≥ n and the business date it
// belongs to (different only when adjusted), or a fire date > limit.
//
// Adjustment is monotone (a later business date never fires earlier), so
// scanning business dates from the first one that can still land on or
// after n finds the smallest fire date first.
func (s *Spec) ruleDay(r *rule, n, limit int) (fire, biz int, err error) {
	if s.adjust == adjNone {
		for {
			d, err := r.days.next(n, limit)
			if err != nil || d > limit {
				return d, d, err
			}
			if len(s.exceptD) == 0 && !s.exceptH {
				return d, d, nil
			}
			x, err := s.excluded(d)
			if err != nil || !x {
				return d, d, err
			}
			n = d + 1
		}
	}
	from := n
	if s.adjust != adjPreceding && s.adjust != adjSkip {
		// A date after the last business day before n can be carried
		// forward to n or later.
		p, err := s.cals.step(n, -1)
		if err != nil {
			return p, p, err
		}
		from = p + 1
	}
	// Preceding can carry a date back from after limit.
	dlimit := limit + 40
	for d := from; ; d++ {
		d, err = r.days.next(d, dlimit)
		if err != nil {
			return d, d, err
		}
		if d > dlimit {
			return limit + 1, limit + 1, nil
		}
		f, ok, err := s.adjustDay(d)
		if err != nil {
			return d, d, err
		}
		if !ok || f < n {
			continue
		}
		if f > limit {
			return limit + 1, limit + 1, nil
		}
		x, err := s.excluded(f)
		if err != nil {
			return f, d, err
		}
		if !x {
			return f, d, nil
		}
	}
}

// allDays matches every date.
type allDays struct{}

func (allDays) next(n, limit int) (int, error) { return n, nil }

// Business-day flags of a daySet.
const (
	bizAny = iota
	bizOnly
	bizNon
)

// allWeek is the weekday mask of every day (bit 0 Sunday … bit 6 Saturday).
const allWeek = 0x7f

// daySet is the English day_set: weekdays by mask, optionally restricted to
// business days or to non-business days of the spec's calendars. Sets are
// closed under intersection, which is how a day scope and clause filters
// combine.
type daySet struct {
	mask uint8
	biz  uint8
	cals *calSet
}

func (d *daySet) all() bool { return d.mask == allWeek && d.biz == bizAny }

func weekdayOf(n int) int {
	w := (n + 4) % 7 // 1970-01-01 was a Thursday
	if w < 0 {
		w += 7
	}
	return w
}

func (d *daySet) next(n, limit int) (int, error) {
	for ; n <= limit; n++ {
		if d.mask&(1<<uint(weekdayOf(n))) == 0 {
			continue
		}
		if d.biz != bizAny {
			ok, err := d.cals.isBusiness(n)
			if err != nil {
				return n, err
			}
			if ok != (d.biz == bizOnly) {
				continue
			}
		}
		return n, nil
	}
	return limit + 1, nil
}

// both matches the dates both selectors match.
type both struct{ a, b daySelector }

func (x both) next(n, limit int) (int, error) {
	for n <= limit {
		a, err := x.a.next(n, limit)
		if err != nil || a > limit {
			return a, err
		}
		b, err := x.b.next(a, limit)
		if err != nil || b == a {
			return b, err
		}
		n = b
	}
	return limit + 1, nil
}

// Periods an ordinal counts within.
const (
	perMonth = iota
	perQuarter
	perYear
)

// What an ordinal counts.
const (
	ordDay      = iota // days: 15th day of month, 1,15 of month, last day
	ordWeekday         // given weekdays: 1st,third mon of …
	ordBusiness        // business days: 2nd business day of quarter
)

// ordDays is an English ordinal selector: the Nth (or Nth last) day,
// weekday or business day of each month, quarter or year. It finds the
// matching dates of a whole period at once instead of testing each day.
type ordDays struct {
	per    int
	months uint16 // months of perMonth, bits 1..12
	kind   int
	wdays  uint8 // weekdays of ordWeekday
	ords   []int // 1… from the period's start, -1… from its end
	cals   *calSet
}

// periodOf returns the first and last day numbers of the period holding n.
func (o *ordDays) periodOf(n int) (int, int) {
	d := calendar.DateOfDays(n)
	switch o.per {
	case perQuarter:
		m := (d.Month-1)/3*3 + 1
		s := calendar.Date{Year: d.Year, Month: m, Day: 1}.Days()
		e := calendar.Date{Year: d.Year, Month: m + 3, Day: 1}.Days() - 1
		return s, e
	case perYear:
		return calendar.Date{Year: d.Year, Month: 1, Day: 1}.Days(), calendar.Date{Year: d.Year + 1, Month: 1, Day: 1}.Days() - 1
	}
	s := n - d.Day + 1
	return s, s + calendar.DaysIn(d.Year, d.Month) - 1
}

func (o *ordDays) next(n, limit int) (int, error) {
	ps, pe := o.periodOf(n)
	for ps <= limit {
		if o.per == perMonth && o.months&(1<<uint(calendar.DateOfDays(ps).Month)) == 0 {
			ps, pe = o.periodOf(pe + 1)
			continue
		}
		best := limit + 1
		for _, k := range o.ords {
			switch o.kind {
			case ordDay:
				x := ps + k - 1
				if k < 0 {
					x = pe + k + 1
				}
				if x >= ps && x <= pe && x >= n && x < best {
					best = x
				}
			case ordWeekday:
				for w := 0; w < 7; w++ {
					if o.wdays&(1<<uint(w)) == 0 {
						continue
					}
					var x int
					if k > 0 {
						x = ps + (w-weekdayOf(ps)+7)%7 + 7*(k-1)
					} else {
						x = pe - (weekdayOf(pe)-w+7)%7 + 7*(k+1)
					}
					if x >= ps && x <= pe && x >= n && x < best {
						best = x
					}
				}
			case ordBusiness:
				x, err := o.business(ps, pe, k)
				if err != nil {
					return x, err
				}
				if x >= n && x < best {
					best = x
				}
			}
		}
		if best <= limit {
			return best, nil
		}
		ps, pe = o.periodOf(pe + 1)
	}
	return limit + 1, nil
}

// business returns the k-th business day of [ps, pe] (k < 0: from the
// end), or a day before ps when the period has fewer.
func (o *ordDays) business(ps, pe, k int) (int, error) {
	x, dir, end := ps, 1, pe+1
	if k < 0 {
		x, dir, end, k = pe, -1, ps-1, -k
	}
	for ; x != end; x += dir {
		ok, err := o.cals.isBusiness(x)
		if err != nil {
			return x, err
		}
		if ok {
			if k--; k == 0 {
				return x, nil
			}
		}
	}
	return ps - 1, nil
}

// usesCalendar reports whether a selector reads calendar data, so parse
// time cannot prove that it fires.
func usesCalendar(d daySelector) bool {
	switch x := d.(type) {
	case *daySet:
		return x.biz != bizAny
	case *ordDays:
		return x.kind == ordBusiness
	case both:
		return usesCalendar(x.a) || usesCalendar(x.b)
	}
	return false
}

// selectorNeverFires reports whether d matches no date in a 28-year cycle,
// which holds every (date, weekday) pair.
func selectorNeverFires(d daySelector) bool {
	if usesCalendar(d) {
		return false
	}
	start := calendar.Date{Year: 2001, Month: time.January, Day: 1}.Days()
	n, _ := d.next(start, start+walkDays)
	return n > start+walkDays
}
