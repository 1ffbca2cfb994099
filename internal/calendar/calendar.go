// Package calendar maps instants to periods in a zone, names periods by
// key, holds business calendars (weekends, holidays), and resolves wall
// times in DST gaps and overlaps (Resolve).
package calendar

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotCovered is wrapped by errors about a date after a calendar's
// Through date. Asking past the data a calendar was given is an error that
// operators must see, never a silent "no business day" (the AutoSys
// year-end trap).
var ErrNotCovered = errors.New("date not covered by calendar")

// Calendar is a business calendar from the schedule's calendars: section.
// It is plain data: changing the holiday list changes future answers
// without re-parsing any trigger.
type Calendar struct {
	Name string
	// Weekend lists the non-working weekdays; nil means Saturday and
	// Sunday, and an empty non-nil slice means no weekend at all.
	Weekend []time.Weekday
	// Holidays are non-business days (ranges are expanded by the schedule
	// reader). A holiday wins over an extra business day.
	Holidays []Date
	// ExtraBusinessDays are weekend dates that are business days anyway.
	ExtraBusinessDays []Date
	// Through is the last date the calendar covers; zero means unbounded.
	// Asking about a later date is an error, never a silent guess.
	Through Date
}

// IsBusinessDay reports whether d is a business day: (weekday not in the
// weekend, or d an extra business day) and d not a holiday. It returns an
// error wrapping ErrNotCovered if d is after Through.
func (c *Calendar) IsBusinessDay(d Date) (bool, error) {
	if !c.Through.IsZero() && d.After(c.Through) {
		return false, fmt.Errorf("calendar %q: %s is after its through date %s: %w", c.Name, d, c.Through, ErrNotCovered)
	}
	// Linear scans: calendars hold tens of dates per year, and keeping no
	// index means the struct stays plain data that may be edited between
	// calls without invalidating anything.
	for _, h := range c.Holidays {
		if h == d {
			return false, nil
		}
	}
	if !c.isWeekend(d.Weekday()) {
		return true, nil
	}
	for _, x := range c.ExtraBusinessDays {
		if x == d {
			return true, nil
		}
	}
	return false, nil
}

func (c *Calendar) isWeekend(w time.Weekday) bool {
	if c.Weekend == nil {
		return w == time.Saturday || w == time.Sunday
	}
	for _, x := range c.Weekend {
		if x == w {
			return true
		}
	}
	return false
}

// maxBusinessGap bounds the search for the next or previous business day,
// so a calendar without any (every weekday a weekend) is an error, not a
// hang.
const maxBusinessGap = 3660

// NextBusinessDay returns the first business day after d.
func (c *Calendar) NextBusinessDay(d Date) (Date, error) { return c.stepBusinessDay(d, 1) }

// PrevBusinessDay returns the last business day before d.
func (c *Calendar) PrevBusinessDay(d Date) (Date, error) { return c.stepBusinessDay(d, -1) }

func (c *Calendar) stepBusinessDay(d Date, dir int) (Date, error) {
	n := d.Days()
	for i := 1; i <= maxBusinessGap; i++ {
		e := DateOfDays(n + dir*i)
		ok, err := c.IsBusinessDay(e)
		if err != nil {
			return Date{}, err
		}
		if ok {
			return e, nil
		}
	}
	return Date{}, fmt.Errorf("calendar %q: no business day within %d days of %s", c.Name, maxBusinessGap, d)
}

// IsHoliday reports whether d is one of the calendar's holidays (weekends
// are not holidays). It returns an error wrapping ErrNotCovered if d is
// after Through.
func (c *Calendar) IsHoliday(d Date) (bool, error) {
	if !c.Through.IsZero() && d.After(c.Through) {
		return false, fmt.Errorf("calendar %q: %s is after its through date %s: %w", c.Name, d, c.Through, ErrNotCovered)
	}
	for _, h := range c.Holidays {
		if h == d {
			return true, nil
		}
	}
	return false, nil
}
