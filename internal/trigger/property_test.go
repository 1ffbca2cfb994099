package trigger

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// randomCron builds a 5-field expression without the cases where Talon
// deliberately differs from robfig (docs/triggers.md#cron): no Vixie */n quirk
// with both day fields restricted, no DOW 7, no Quartz tokens, and day
// fields that can always fire.
func randomCron(r *rand.Rand) string {
	part := func(lo, hi int) string {
		switch r.IntN(5) {
		case 0:
			return "*"
		case 1:
			return fmt.Sprint(lo + r.IntN(hi-lo+1))
		case 2:
			a := lo + r.IntN(hi-lo+1)
			b := a + r.IntN(hi-a+1)
			return fmt.Sprintf("%d-%d", a, b)
		case 3:
			return fmt.Sprintf("*/%d", 1+r.IntN(max(1, (hi-lo)/2)))
		default:
			a, b := lo+r.IntN(hi-lo+1), lo+r.IntN(hi-lo+1)
			return fmt.Sprintf("%d,%d", a, b)
		}
	}
	dom, dow := part(1, 28), part(0, 6)
	if !strings.HasPrefix(dom, "*") && !strings.HasPrefix(dow, "*") {
		// Both restricted: OR in both implementations.
	} else if strings.HasPrefix(dom, "*/") && dow != "*" || strings.HasPrefix(dow, "*/") && dom != "*" {
		dom = "*" // avoid robfig's dropped star flag
	}
	return strings.Join([]string{part(0, 59), part(0, 23), dom, part(1, 12), dow}, " ")
}

// TestNextMatchesRobfigUTC compares Next with robfig on random cron
// expressions in UTC, where there is no DST for the two to differ on.
func TestNextMatchesRobfigUTC(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	base := mustTime(t, "2026-11-26T18:45:00Z")
	for range 300 {
		expr := randomCron(r)
		rs, err := cron.ParseStandard(expr)
		if err != nil {
			t.Fatalf("robfig rejects %q: %v", expr, err)
		}
		tr, err := Parse(expr, Options{})
		if err != nil {
			t.Fatalf("Parse(%q): %v", expr, err)
		}
		a, b := base, base
		for i := range 30 {
			a, b = tr.Next(a), rs.Next(b)
			if !a.Equal(b) {
				t.Fatalf("%q fire %d: talon %s, robfig %s", expr, i, a, b)
			}
		}
	}
}

// TestNextStrictlyIncreasing iterates Next across DST transitions in
// several zones and policies: every fire is after the previous one, and
// Next from any instant between two fires returns the second.
func TestNextStrictlyIncreasing(t *testing.T) {
	t.Parallel()
	exprs := []string{"* * * * *", "*/7 * * * *", "30 1 * * *", "0 2 * * *", "15 2 * * *", "*/15 0-3 * * *", "0 0 * * *", "0 */2 * * *", "0 0 L * *", "*/20 * 1 * * *", "@every 90m/15m", "45 1 * * 0",
		"every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm", "every 30 minutes between 1-4am",
		"every 20 minutes between 11pm-3am on sat,sun", "every 25 minutes from 00:10 to 02:40", "at 00:00, 01:30, 02:30 and 23:59:59",
		"last day of month at 02:30 adjust following", "2nd business day of month at 00:00", "every 45 minutes on weekdays starting 2026-01-01"}
	// Windows of three days around a transition of each zone (or not).
	zones := []string{"UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Africa/Cairo", "Asia/Kolkata"}
	policies := []string{"", " dst skip", " dst shift overlap both", " dst skip overlap both"}
	windows := []string{"2027-03-13T00:00:00Z", "2027-03-27T00:00:00Z", "2027-10-30T00:00:00Z", "2027-11-06T00:00:00Z", "2026-09-05T00:00:00Z", "2026-10-03T00:00:00Z", "2027-04-02T00:00:00Z", "2027-04-29T00:00:00Z", "2027-10-28T00:00:00Z"}
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			loc := mustLoad(t, zone)
			for _, e := range exprs {
				for _, pol := range policies {
					tr, err := Parse(e+pol, Options{Location: loc})
					if err != nil {
						t.Fatal(err)
					}
					for _, w := range windows {
						x := mustTime(t, w)
						end := x.Add(3 * 24 * time.Hour)
						for x.Before(end) {
							n := tr.Next(x)
							if !n.After(x) {
								t.Fatalf("%q: Next(%s) = %s", e+pol, x, n)
							}
							// A base halfway to the fire finds the same fire.
							if mid := x.Add(n.Sub(x) / 2); mid.After(x) && !tr.Next(mid).Equal(n) {
								t.Fatalf("%q: Next(%s) = %s, but Next(%s) = %s", e+pol, x, n, mid, tr.Next(mid))
							}
							x = n
						}
					}
				}
			}
		})
	}
}

// TestDefaultPolicyFiresEveryDayOnce checks the promise of docs/triggers.md#dst: a
// daily wall time fires exactly once on every local date, across gaps and
// overlaps.
func TestDefaultPolicyFiresEveryDayOnce(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Africa/Cairo"} {
		loc := mustLoad(t, zone)
		for _, e := range []string{"0 0 * * *", "30 1 * * *", "30 2 * * *", "45 1 * * *", "30 23 * * *"} {
			tr, err := Parse(e, Options{Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			x := mustTime(t, "2026-01-01T00:00:00Z")
			prev := ""
			for range 730 {
				x = tr.Next(x)
				d := x.In(loc).Format(time.DateOnly)
				// A shifted midnight may read 01:00 of the same date; the
				// date must still advance by exactly one day.
				if prev != "" {
					p, _ := time.Parse(time.DateOnly, prev)
					if want := p.AddDate(0, 0, 1).Format(time.DateOnly); d != want {
						t.Fatalf("%s %q: fire on %s follows %s, want %s", zone, e, d, prev, want)
					}
				}
				prev = d
			}
		}
	}
}
