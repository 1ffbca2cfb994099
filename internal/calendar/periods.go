package calendar

import (
	"time"

	"github.com/talonhq/talon"
)

// Periods describes the periods a job is run for: their type, the zone
// and business calendar that decide them, and the environment their keys
// carry. The engine, `talon calendar` and the API all find periods
// through it, so they agree on which period an instant belongs to.
type Periods struct {
	Type        talon.PeriodType
	Location    *time.Location // nil: UTC
	Calendar    *Calendar      // nil: every day is a business day
	Environment string
}

// At returns the period that contains instant t, or with offset
// previous the one before it. A oneshot period has no bounds: a time
// trigger names it after t in Location ("oneshot/20261126T0630").
// Errors are PeriodAt's and Shift's.
func (p Periods) At(t time.Time, offset talon.PeriodOffset) (talon.Period, error) {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	if p.Type == talon.Oneshot {
		return talon.Period{Type: talon.Oneshot, Name: t.In(loc).Format("20060102T1504"), Environment: p.Environment}, nil
	}
	per, err := PeriodAt(t, p.Type, loc, p.Calendar, p.Environment)
	if err != nil {
		return per, err
	}
	if offset == talon.PeriodPrevious {
		return Shift(per, -1, p.Calendar)
	}
	return per, nil
}

// OfDate returns the period that contains date d (its noon, which is
// inside the date's period in every zone, DST days included), or with
// offset previous the one before it.
func (p Periods) OfDate(d Date, offset talon.PeriodOffset) (talon.Period, error) {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	return p.At(time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, loc), offset)
}
