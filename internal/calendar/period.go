package calendar

import (
	"errors"
	"fmt"
	"time"

	"github.com/talonhq/talon"
)

// A period is found through its index: a count of periods of its type
// since a fixed origin, taken from wall-clock dates in the zone (hours
// since 1970-01-01T00 wall time, days since 1970-01-01, months since year
// 0, …). The bounds of index i are the instants at which the clocks first
// show the wall time that starts period i and period i+1. So a 23- or
// 25-hour day is one period, a repeated hour is one two-hour hourly period,
// and a wall hour that the clocks skip is an empty period nobody lands in.

// PeriodAt returns the period of type typ that contains instant t in loc
// (nil: UTC). Start and End are in loc.
//
// With a calendar, daily periods are business days. A business day's
// period runs from its midnight to the midnight of the next business day,
// so an instant on a weekend or holiday belongs to the business day in
// progress: a fire on Saturday 06:00 is Friday's period. We chose this over
// "the next business day" because Start must stay the business day's own
// midnight (not_before and start_by are times of the period's day, and the
// key is Start's date), and because it keeps periods a partition of time:
// every instant has exactly one daily period. The rest of the rule
// (docs/triggers.md#which-period-a-fire-belongs-to): a trigger that
// adjusts a date (adjust following) keeps
// the unadjusted date's period, which the trigger reports, not this
// function. Errors: an unknown or oneshot type, or a date beyond the
// calendar's Through (wrapping ErrNotCovered).
func PeriodAt(t time.Time, typ talon.PeriodType, loc *time.Location, cal *Calendar, env string) (talon.Period, error) {
	if loc == nil {
		loc = time.UTC
	}
	if typ == talon.Oneshot {
		return talon.Period{}, errors.New("period at instant: oneshot periods are named, not found by time (use ParseKey with \"oneshot/NAME\")")
	}
	if typ == talon.Daily && cal != nil {
		return businessDayAt(t, loc, cal, env)
	}
	if !indexed(typ) {
		return talon.Period{}, fmt.Errorf("period at instant: unknown period type %q", typ)
	}
	lt := t.In(loc)
	w := Wall{Date: DateOf(lt), Hour: lt.Hour()}
	i := indexOf(typ, w)
	// Bounds come from the first reading of each wall time, so in rare
	// zones (a fall-back across midnight) the instant's own reading names
	// a neighbouring period; step to the one that contains t.
	for range 4 {
		s, e := bounds(typ, i, loc)
		switch {
		case t.Before(s):
			i--
		case !t.Before(e):
			i++
		default:
			return talon.Period{Type: typ, Start: s, End: e, Environment: env}, nil
		}
	}
	return talon.Period{}, fmt.Errorf("period at instant: no %s period contains %s in %s", typ, t.Format(time.RFC3339), loc)
}

func businessDayAt(t time.Time, loc *time.Location, cal *Calendar, env string) (talon.Period, error) {
	d := DateOf(t.In(loc))
	ok, err := cal.IsBusinessDay(d)
	if err != nil {
		return talon.Period{}, fmt.Errorf("daily period at %s: %w", t.Format(time.RFC3339), err)
	}
	if !ok {
		if d, err = cal.PrevBusinessDay(d); err != nil {
			return talon.Period{}, fmt.Errorf("daily period at %s: %w", t.Format(time.RFC3339), err)
		}
	}
	for range 4 {
		p, err := businessDay(d, loc, cal, env)
		if err != nil {
			return talon.Period{}, fmt.Errorf("daily period at %s: %w", t.Format(time.RFC3339), err)
		}
		var step func(Date) (Date, error)
		switch {
		case t.Before(p.Start):
			step = cal.PrevBusinessDay
		case !t.Before(p.End):
			step = cal.NextBusinessDay
		default:
			return p, nil
		}
		if d, err = step(d); err != nil {
			return talon.Period{}, fmt.Errorf("daily period at %s: %w", t.Format(time.RFC3339), err)
		}
	}
	return talon.Period{}, fmt.Errorf("daily period at %s: no business day contains it in %s", t.Format(time.RFC3339), loc)
}

// businessDay returns the daily period of business day d: from its
// midnight to the next business day's.
func businessDay(d Date, loc *time.Location, cal *Calendar, env string) (talon.Period, error) {
	next, err := cal.NextBusinessDay(d)
	if err != nil {
		return talon.Period{}, err
	}
	s := Resolve(Wall{Date: d}, loc).Start().In(loc)
	e := Resolve(Wall{Date: next}, loc).Start().In(loc)
	return talon.Period{Type: talon.Daily, Start: s, End: e, Environment: env}, nil
}

// Shift returns the period n periods after p (n < 0: before). Daily
// periods with a calendar move by business days. Periods that have no
// instants (an hour the clocks skip) are not counted. Errors: a oneshot
// period, which has no neighbours, or a date beyond the calendar.
func Shift(p talon.Period, n int, cal *Calendar) (talon.Period, error) {
	loc := p.Start.Location()
	if p.Type == talon.Oneshot {
		return talon.Period{}, fmt.Errorf("shift period %s: oneshot periods have no neighbours", p.Key())
	}
	if p.Type == talon.Daily && cal != nil {
		d := DateOf(p.Start.In(loc))
		step, k := cal.NextBusinessDay, n
		if n < 0 {
			step, k = cal.PrevBusinessDay, -n
		}
		var err error
		for range k {
			if d, err = step(d); err != nil {
				return talon.Period{}, fmt.Errorf("shift period %s by %d: %w", p.Key(), n, err)
			}
		}
		q, err := businessDay(d, loc, cal, p.Environment)
		if err != nil {
			return talon.Period{}, fmt.Errorf("shift period %s by %d: %w", p.Key(), n, err)
		}
		return q, nil
	}
	if !indexed(p.Type) {
		return talon.Period{}, fmt.Errorf("shift period: unknown period type %q", p.Type)
	}
	lt := p.Start.In(loc)
	i := indexOf(p.Type, Wall{Date: DateOf(lt), Hour: lt.Hour()})
	dir := 1
	if n < 0 {
		dir = -1
	}
	if p.Type != talon.Hourly {
		// Only hours are ever skipped in practice (Samoa's lost 2011-12-30
		// is the one day); jump, then step over an empty landing.
		i += n
		n = 0
	}
	if n*dir > 1_000_000 {
		return talon.Period{}, fmt.Errorf("shift period %s by %d: too far", p.Key(), n)
	}
	for k := 0; ; {
		s, e := bounds(p.Type, i, loc)
		if s.Before(e) {
			if k == n*dir {
				return talon.Period{Type: p.Type, Start: s, End: e, Environment: p.Environment}, nil
			}
			k++
		} else if n == 0 {
			// Landed on an empty period: take the next real one.
			i += dir
			continue
		}
		i += dir
	}
}

func indexed(typ talon.PeriodType) bool {
	switch typ {
	case talon.Hourly, talon.Daily, talon.Weekly, talon.Monthly, talon.Quarterly, talon.Yearly:
		return true
	}
	return false
}

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// indexOf returns the index of the period of type typ whose wall-clock
// span holds w.
func indexOf(typ talon.PeriodType, w Wall) int {
	switch typ {
	case talon.Hourly:
		return w.Date.Days()*24 + w.Hour
	case talon.Daily:
		return w.Date.Days()
	case talon.Weekly:
		// 1970-01-05 was the first Monday after the epoch.
		return floorDiv(w.Date.Days()-4, 7)
	case talon.Monthly:
		return w.Year*12 + int(w.Month) - 1
	case talon.Quarterly:
		return w.Year*4 + (int(w.Month)-1)/3
	case talon.Yearly:
		return w.Year
	}
	return 0
}

// startWall returns the wall time at which period i of type typ starts.
func startWall(typ talon.PeriodType, i int) Wall {
	switch typ {
	case talon.Hourly:
		return Wall{Date: DateOfDays(floorDiv(i, 24)), Hour: i - floorDiv(i, 24)*24}
	case talon.Daily:
		return Wall{Date: DateOfDays(i)}
	case talon.Weekly:
		return Wall{Date: DateOfDays(i*7 + 4)}
	case talon.Monthly:
		return Wall{Date: Date{floorDiv(i, 12), time.Month(i-floorDiv(i, 12)*12) + 1, 1}}
	case talon.Quarterly:
		return Wall{Date: Date{floorDiv(i, 4), time.Month((i-floorDiv(i, 4)*4)*3) + 1, 1}}
	case talon.Yearly:
		return Wall{Date: Date{i, time.January, 1}}
	}
	return Wall{}
}

// bounds returns [start, end) of period i, in loc.
func bounds(typ talon.PeriodType, i int, loc *time.Location) (time.Time, time.Time) {
	s := Resolve(startWall(typ, i), loc).Start().In(loc)
	e := Resolve(startWall(typ, i+1), loc).Start().In(loc)
	return s, e
}
