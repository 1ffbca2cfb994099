// Package calendar maps instants to periods in a zone, names periods by
// key, and holds business calendars (weekends, holidays).
package calendar

import (
	"errors"
	"time"

	"github.com/talonhq/talon"
)

// Date is a civil date, without zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Calendar is a business calendar from the schedule's calendars: section.
type Calendar struct {
	Name              string
	Weekend           []time.Weekday
	Holidays          []Date
	ExtraBusinessDays []Date
	// Through is the last date the calendar covers; zero means unbounded.
	// Asking about a later date is an error, never a silent guess.
	Through Date
}

// IsBusinessDay reports whether d is a business day.
func (c *Calendar) IsBusinessDay(d Date) (bool, error) {
	return false, errors.New("not implemented")
}

// PeriodAt returns the period of type typ that contains instant t in loc
// (nil: UTC), following cal for daily periods when cal is non-nil.
func PeriodAt(t time.Time, typ talon.PeriodType, loc *time.Location, cal *Calendar, env string) (talon.Period, error) {
	return talon.Period{}, errors.New("not implemented")
}

// Shift returns the period n periods after p (n < 0: before).
func Shift(p talon.Period, n int, cal *Calendar) (talon.Period, error) {
	return talon.Period{}, errors.New("not implemented")
}

// ParseKey parses a period key ("daily/2026-11-26", "prod:weekly/2026-W48",
// "oneshot/NAME") into a period in loc.
func ParseKey(key string, loc *time.Location) (talon.Period, error) {
	return talon.Period{}, errors.New("not implemented")
}
