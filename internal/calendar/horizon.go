package calendar

import (
	"time"

	"github.com/talonhq/talon"
)

// Talon's horizon: the periods a trigger or backfill may name. Times
// before the Unix epoch are not Talon's to schedule (the @every grid and
// the stored clock start there), and a period a century ahead is a typo,
// not a plan; the bound also keeps period arithmetic far from year 9999,
// past which keys have no form.
const HorizonYears = 100

var horizonStart = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// InHorizon refuses (invalid) a period that starts before 1970-01-01 or
// more than HorizonYears after now. key is the period as the user wrote
// it, for the error.
func InHorizon(key string, per talon.Period, now time.Time) error {
	if per.Type == talon.Oneshot {
		return nil // named, not dated
	}
	// Compare calendar dates in the period's zone, so that 1970-01-01 is
	// in the horizon east of UTC too.
	date := func(t time.Time) time.Time {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	start := date(per.Start)
	end := date(now.In(per.Start.Location())).AddDate(HorizonYears, 0, 0)
	if start.Before(horizonStart) || start.After(end) {
		return talon.Errorf(talon.EINVALID, "period %q is beyond Talon's horizon: a period must start between %s and %d years from now (%s)",
			key, horizonStart.Format(time.DateOnly), HorizonYears, end.Format(time.DateOnly))
	}
	return nil
}
