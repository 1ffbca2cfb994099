package trigger

import (
	"archive/zip"
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
)

// zoneNames lists every zone of the Go distribution's tzdata (the same
// names as the embedded time/tzdata), or of the host's tzdata.zi.
func zoneNames(t *testing.T) []string {
	t.Helper()
	var names []string
	if z, err := zip.OpenReader(filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip")); err == nil {
		defer z.Close()
		for _, f := range z.File {
			if !strings.HasSuffix(f.Name, "/") {
				names = append(names, f.Name)
			}
		}
	} else if f, err := os.Open("/usr/share/zoneinfo/tzdata.zi"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			c := strings.Fields(sc.Text())
			switch {
			case len(c) >= 2 && c[0] == "Z":
				names = append(names, c[1])
			case len(c) >= 3 && c[0] == "L":
				names = append(names, c[2])
			}
		}
	} else {
		t.Skip("no zone list: neither GOROOT/lib/time/zoneinfo.zip nor /usr/share/zoneinfo/tzdata.zi")
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestDailyEveryZone checks docs/triggers.md#dst and docs/model.md#periods-and-keys in every
// zone from 1990 to 2040: a daily trigger fires exactly once on every
// local date that exists (Pacific/Apia skipped 2011-12-30), Next is
// strictly increasing, and the daily period keys of the fires are
// contiguous, without gaps or duplicates. Under -race or -short it takes
// a deterministic sample of zones and always the hard ones.
func TestDailyEveryZone(t *testing.T) {
	t.Parallel()
	zones := zoneNames(t)
	sample := raceEnabled || testing.Short()
	hard := []string{"America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Africa/Cairo", "Pacific/Apia", "Pacific/Kwajalein", "America/Havana", "Asia/Tehran", "Antarctica/Troll"}
	exprs := []string{"daily", "daily at 02:30"}
	for i, zone := range zones {
		if sample && i%25 != 0 && !slices.Contains(hard, zone) {
			continue
		}
		t.Run(zone, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Skipf("zone %s: %v", zone, err)
			}
			for _, expr := range exprs {
				if sample && expr != exprs[0] && !slices.Contains(hard, zone) {
					continue
				}
				checkDaily(t, zone, loc, expr)
			}
		})
	}
}

func checkDaily(t *testing.T, zone string, loc *time.Location, expr string) {
	s, err := ParseSpec(expr, Options{Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	x := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2041, 1, 1, 0, 0, 0, 0, time.UTC)
	var prevDate calendar.Date
	var prev talon.Period
	for x.Before(end) {
		f, err := s.NextFire(x)
		if err != nil || f.At.IsZero() {
			t.Fatalf("%s %q: NextFire(%s) = %v, %v", zone, expr, x, f.At, err)
		}
		if !f.At.After(x) {
			t.Fatalf("%s %q: NextFire(%s) = %s, not after", zone, expr, x, f.At)
		}
		d := calendar.DateOf(f.At.In(loc))
		if d != f.Date && f.Date.AddDays(1) != d {
			t.Fatalf("%s %q: fire %s has business date %s", zone, expr, f.At, f.Date)
		}
		p, err := calendar.PeriodAt(f.At, talon.Daily, loc, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if !prevDate.IsZero() {
			if !d.After(prevDate) {
				t.Fatalf("%s %q: fire %s on %s after a fire on %s", zone, expr, f.At, d, prevDate)
			}
			for m := prevDate.AddDays(1); m.Before(d); m = m.AddDays(1) {
				if dateExists(m, loc) {
					t.Fatalf("%s %q: no fire on %s (fires %s then %s)", zone, expr, m, prevDate, d)
				}
			}
			// Periods tile time: this fire's period starts where the
			// previous one's ended, unless the dates between were skipped
			// by the clocks (then their periods are empty).
			if !p.Start.Equal(prev.End) && d == prevDate.AddDays(1) {
				t.Fatalf("%s %q: period %s–%s follows %s–%s", zone, expr, p.Start, p.End, prev.Start, prev.End)
			}
			if p.Start.Equal(prev.Start) {
				t.Fatalf("%s %q: two fires in period %s", zone, expr, p.Start)
			}
		}
		prevDate, prev, x = d, p, f.At
	}
}

// dateExists reports whether the clocks of loc ever show date d.
func dateExists(d calendar.Date, loc *time.Location) bool {
	r := calendar.Resolve(calendar.Wall{Date: d, Hour: 12}, loc)
	if r.Kind != calendar.Gap {
		return true
	}
	// A gap at noon: the whole day may have been skipped; look at its
	// last second too.
	return calendar.Resolve(calendar.Wall{Date: d, Hour: 23, Minute: 59, Second: 59}, loc).Kind != calendar.Gap
}
