package trigger

import (
	"testing"
	"time"
)

// TestNextExtremes asks Next about instants far from today: it must not
// panic, and what it returns is still after the base.
func TestNextExtremes(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	for _, expr := range []string{"* * * * *", "0 0 29 2 *", "@every 1h/1m", "@once 2027-01-04 09:00", "0 0 L * *"} {
		tr, err := Parse(expr, Options{Location: ny})
		if err != nil {
			t.Fatal(err)
		}
		for _, base := range []time.Time{{}, time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC), time.Unix(-1<<40, 0), time.Unix(1<<40, 0)} {
			if n := tr.Next(base); !n.IsZero() && !n.After(base) {
				t.Errorf("%q: Next(%s) = %s", expr, base, n)
			}
		}
	}
}
