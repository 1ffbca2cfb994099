package trigger

import (
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
)

// Period returns the period of p that fire f belongs to, shifted by
// offset. It is the one containing the fire's business date: the date the
// rule selected before any holiday adjustment, so "15th of month adjust
// preceding" keeps the 15th's period when it starts on the 13th, and a
// window across midnight ("on fridays: … between 10pm-2am") stays with
// the day that opened it. Fires without a business date (cron, @every)
// and hourly and oneshot periods use the nominal instant. Jitter, which
// only delays At, never changes the period.
func (f Fire) Period(p calendar.Periods, offset talon.PeriodOffset) (talon.Period, error) {
	if f.Date.IsZero() || p.Type == talon.Oneshot || p.Type == talon.Hourly {
		return p.At(f.Nominal, offset)
	}
	return p.OfDate(f.Date, offset)
}

// fireTrigger is a trigger that says more about its fires than Next: the
// nominal instant, the business date, and errors such as a calendar that
// does not cover the date. *Spec is one; registered kinds may be.
type fireTrigger interface {
	NextFire(after time.Time) (Fire, error)
}

// NextFire returns the next fire of t strictly after after: t's own
// NextFire when it has one, else a fire at t.Next(after) with no jitter
// and no business date. The zero Fire means t never fires again.
func NextFire(t Trigger, after time.Time) (Fire, error) {
	if ft, ok := t.(fireTrigger); ok {
		return ft.NextFire(after)
	}
	at := t.Next(after)
	return Fire{At: at, Nominal: at}, nil
}
