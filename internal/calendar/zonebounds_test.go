package calendar

import (
	"testing"
	"time"
)

// TestZoneBoundsLeapYearEnd: Go reports the last period of a leap year in
// the rule-extended range as ending at Dec 31 00:00 UTC; ZoneBounds and
// Resolve must not be fooled.
func TestZoneBoundsLeapYearEnd(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2040, 12, 31, 5, 0, 0, 0, time.UTC).In(ny)
	s, e := ZoneBounds(at)
	if at.Before(s) || !at.Before(e) {
		t.Fatalf("ZoneBounds(%s) = [%s, %s), not holding it", at, s, e)
	}
	r := Resolve(Wall{Date: Date{2040, time.December, 31}}, ny)
	if r.Kind != Normal || !r.Fold0.Equal(at) {
		t.Fatalf("Resolve 2040-12-31T00:00 = %v %s, want normal %s", r.Kind, r.Fold0, at)
	}
}
