package calendar

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
)

func mustLoad(t testing.TB, zone string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPeriodAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		zone  string
		at    string
		typ   talon.PeriodType
		env   string
		key   string
		start string
		end   string
	}{
		{name: "utc daily", zone: "UTC", at: "2026-11-26T18:45:00Z", typ: talon.Daily, key: "daily/2026-11-26", start: "2026-11-26T00:00:00Z", end: "2026-11-27T00:00:00Z"},
		{name: "env prefix", zone: "UTC", at: "2026-11-26T18:45:00Z", typ: talon.Daily, env: "prod", key: "prod:daily/2026-11-26", start: "2026-11-26T00:00:00Z", end: "2026-11-27T00:00:00Z"},
		{name: "new york evening is local date", zone: "America/New_York", at: "2027-04-01T03:30:00Z", typ: talon.Quarterly, key: "quarterly/2027-Q1", start: "2027-01-01T00:00:00-05:00", end: "2027-04-01T00:00:00-04:00"},
		{name: "new york spring day 23h", zone: "America/New_York", at: "2027-03-14T12:00:00Z", typ: talon.Daily, key: "daily/2027-03-14", start: "2027-03-14T00:00:00-05:00", end: "2027-03-15T00:00:00-04:00"},
		{name: "new york fall day 25h", zone: "America/New_York", at: "2027-11-07T06:30:00Z", typ: talon.Daily, key: "daily/2027-11-07", start: "2027-11-07T00:00:00-04:00", end: "2027-11-08T00:00:00-05:00"},
		{name: "new york repeated hour is one period", zone: "America/New_York", at: "2027-11-07T06:30:00Z", typ: talon.Hourly, key: "hourly/2027-11-07T01", start: "2027-11-07T01:00:00-04:00", end: "2027-11-07T02:00:00-05:00"},
		{name: "new york hour after gap", zone: "America/New_York", at: "2027-03-14T07:10:00Z", typ: talon.Hourly, key: "hourly/2027-03-14T03", start: "2027-03-14T03:00:00-04:00", end: "2027-03-14T04:00:00-04:00"},
		{name: "new york hour before gap", zone: "America/New_York", at: "2027-03-14T06:59:00Z", typ: talon.Hourly, key: "hourly/2027-03-14T01", start: "2027-03-14T01:00:00-05:00", end: "2027-03-14T03:00:00-04:00"},
		{name: "london spring day", zone: "Europe/London", at: "2027-03-28T01:30:00Z", typ: talon.Daily, key: "daily/2027-03-28", start: "2027-03-28T00:00:00Z", end: "2027-03-29T00:00:00+01:00"},
		{name: "london fall monthly", zone: "Europe/London", at: "2027-10-31T01:30:00Z", typ: talon.Monthly, key: "monthly/2027-10", start: "2027-10-01T00:00:00+01:00", end: "2027-11-01T00:00:00Z"},
		{name: "lord howe half hour gap hour", zone: "Australia/Lord_Howe", at: "2026-10-03T15:40:00Z", typ: talon.Hourly, key: "hourly/2026-10-04T02", start: "2026-10-04T02:30:00+11:00", end: "2026-10-04T03:00:00+11:00"},
		{name: "lord howe daily", zone: "Australia/Lord_Howe", at: "2026-10-03T15:40:00Z", typ: talon.Daily, key: "daily/2026-10-04", start: "2026-10-04T00:00:00+10:30", end: "2026-10-05T00:00:00+11:00"},
		{name: "kolkata half hour offset", zone: "Asia/Kolkata", at: "2026-11-26T18:45:00Z", typ: talon.Daily, key: "daily/2026-11-27", start: "2026-11-27T00:00:00+05:30", end: "2026-11-28T00:00:00+05:30"},
		{name: "kolkata hourly", zone: "Asia/Kolkata", at: "2026-11-26T18:45:00Z", typ: talon.Hourly, key: "hourly/2026-11-27T00", start: "2026-11-27T00:00:00+05:30", end: "2026-11-27T01:00:00+05:30"},
		{name: "santiago midnight gap day starts at 01:00", zone: "America/Santiago", at: "2026-09-06T12:00:00Z", typ: talon.Daily, key: "daily/2026-09-06", start: "2026-09-06T01:00:00-03:00", end: "2026-09-07T00:00:00-03:00"},
		{name: "iso week 53 of 2020 on dec 31", zone: "UTC", at: "2020-12-31T12:00:00Z", typ: talon.Weekly, key: "weekly/2020-W53", start: "2020-12-28T00:00:00Z", end: "2021-01-04T00:00:00Z"},
		{name: "iso week 53 of 2020 on jan 3", zone: "UTC", at: "2021-01-03T23:59:59Z", typ: talon.Weekly, key: "weekly/2020-W53", start: "2020-12-28T00:00:00Z", end: "2021-01-04T00:00:00Z"},
		{name: "iso week 1 of 2021", zone: "UTC", at: "2021-01-04T00:00:00Z", typ: talon.Weekly, key: "weekly/2021-W01", start: "2021-01-04T00:00:00Z", end: "2021-01-11T00:00:00Z"},
		{name: "iso week 53 of 2026 in 2027", zone: "UTC", at: "2027-01-01T00:00:00Z", typ: talon.Weekly, key: "weekly/2026-W53", start: "2026-12-28T00:00:00Z", end: "2027-01-04T00:00:00Z"},
		{name: "iso week 1 of 2025 starts in 2024", zone: "UTC", at: "2024-12-30T00:00:00Z", typ: talon.Weekly, key: "weekly/2025-W01", start: "2024-12-30T00:00:00Z", end: "2025-01-06T00:00:00Z"},
		{name: "week across london dst", zone: "Europe/London", at: "2027-03-28T12:00:00Z", typ: talon.Weekly, key: "weekly/2027-W12", start: "2027-03-22T00:00:00Z", end: "2027-03-29T00:00:00+01:00"},
		{name: "quarter last instant", zone: "UTC", at: "2026-12-31T23:59:59Z", typ: talon.Quarterly, key: "quarterly/2026-Q4", start: "2026-10-01T00:00:00Z", end: "2027-01-01T00:00:00Z"},
		{name: "quarter first instant", zone: "UTC", at: "2027-04-01T00:00:00Z", typ: talon.Quarterly, key: "quarterly/2027-Q2", start: "2027-04-01T00:00:00Z", end: "2027-07-01T00:00:00Z"},
		{name: "quarter 3", zone: "UTC", at: "2027-09-30T12:00:00Z", typ: talon.Quarterly, key: "quarterly/2027-Q3", start: "2027-07-01T00:00:00Z", end: "2027-10-01T00:00:00Z"},
		{name: "yearly", zone: "America/New_York", at: "2027-01-01T04:59:59Z", typ: talon.Yearly, key: "yearly/2026", start: "2026-01-01T00:00:00-05:00", end: "2027-01-01T00:00:00-05:00"},
		{name: "monthly leap february", zone: "UTC", at: "2028-02-29T12:00:00Z", typ: talon.Monthly, key: "monthly/2028-02", start: "2028-02-01T00:00:00Z", end: "2028-03-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc := mustLoad(t, tt.zone)
			at := mustTime(t, tt.at)
			p, err := PeriodAt(at, tt.typ, loc, nil, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Key(); got != tt.key {
				t.Errorf("Key() = %s, want %s", got, tt.key)
			}
			if !p.Start.Equal(mustTime(t, tt.start)) || !p.End.Equal(mustTime(t, tt.end)) {
				t.Errorf("period = [%s, %s), want [%s, %s)", p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339), tt.start, tt.end)
			}
			if p.Start.Location() != loc {
				t.Errorf("Start in %v, want %v", p.Start.Location(), loc)
			}
			if at.Before(p.Start) || !at.Before(p.End) {
				t.Errorf("%s not in [%s, %s)", tt.at, p.Start, p.End)
			}
			// The key names the same period back.
			q, err := ParseKey(p.Key(), loc)
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", p.Key(), err)
			}
			if !q.Start.Equal(p.Start) || !q.End.Equal(p.End) || q.Environment != p.Environment {
				t.Errorf("ParseKey(%q) = [%s, %s), want [%s, %s)", p.Key(), q.Start, q.End, p.Start, p.End)
			}
		})
	}
}

// TestPeriodsTile walks every period type across DST years in several
// zones: each period's End is the next one's Start and every instant lands
// in exactly one.
func TestPeriodsTile(t *testing.T) {
	t.Parallel()
	for _, zone := range []string{"UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago", "Africa/Cairo"} {
		for _, typ := range []talon.PeriodType{talon.Hourly, talon.Daily, talon.Weekly, talon.Monthly, talon.Quarterly} {
			t.Run(zone+"/"+string(typ), func(t *testing.T) {
				t.Parallel()
				loc := mustLoad(t, zone)
				from := mustTime(t, "2026-01-01T00:00:00Z")
				to := mustTime(t, "2028-01-01T00:00:00Z")
				p, err := PeriodAt(from, typ, loc, nil, "")
				if err != nil {
					t.Fatal(err)
				}
				for p.Start.Before(to) {
					n, err := Shift(p, 1, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !n.Start.Equal(p.End) {
						t.Fatalf("%s ends %s but %s starts %s", p.Key(), p.End, n.Key(), n.Start)
					}
					if n.Key() == p.Key() {
						t.Fatalf("two periods named %s", p.Key())
					}
					back, err := Shift(n, -1, nil)
					if err != nil || back.Key() != p.Key() {
						t.Fatalf("Shift(%s, -1) = %s, %v; want %s", n.Key(), back.Key(), err, p.Key())
					}
					last := p.End.Add(-time.Second)
					if q, err := PeriodAt(last, typ, loc, nil, ""); err != nil || q.Key() != p.Key() {
						t.Fatalf("PeriodAt(%s) = %s, %v; want %s", last, q.Key(), err, p.Key())
					}
					p = n
				}
			})
		}
	}
}

func TestShift(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name string
		key  string
		n    int
		want string
	}{
		{name: "yesterday", key: "daily/2027-03-01", n: -1, want: "daily/2027-02-28"},
		{name: "leap day", key: "daily/2028-02-28", n: 1, want: "daily/2028-02-29"},
		{name: "hour over gap", key: "hourly/2027-03-14T01", n: 1, want: "hourly/2027-03-14T03"},
		{name: "hour back over gap", key: "hourly/2027-03-14T03", n: -1, want: "hourly/2027-03-14T01"},
		{name: "hours across gap", key: "hourly/2027-03-14T00", n: 3, want: "hourly/2027-03-14T04"},
		{name: "week into 53", key: "weekly/2026-W52", n: 1, want: "weekly/2026-W53"},
		{name: "week out of 53", key: "weekly/2026-W53", n: 1, want: "weekly/2027-W01"},
		{name: "quarter back over year", key: "quarterly/2027-Q1", n: -1, want: "quarterly/2026-Q4"},
		{name: "months", key: "prod:monthly/2026-11", n: 14, want: "prod:monthly/2028-01"},
		{name: "years back", key: "yearly/2026", n: -26, want: "yearly/2000"},
		{name: "zero", key: "daily/2026-11-26", n: 0, want: "daily/2026-11-26"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseKey(tt.key, ny)
			if err != nil {
				t.Fatal(err)
			}
			q, err := Shift(p, tt.n, nil)
			if err != nil {
				t.Fatal(err)
			}
			if q.Key() != tt.want {
				t.Errorf("Shift(%s, %d) = %s, want %s", tt.key, tt.n, q.Key(), tt.want)
			}
		})
	}
	if _, err := Shift(talon.Period{Type: talon.Oneshot, Name: "x"}, 1, nil); err == nil {
		t.Error("Shift(oneshot) succeeded, want error")
	}
}

func testUS() *Calendar {
	d := func(s string) Date {
		v, err := ParseDate(s)
		if err != nil {
			panic(err)
		}
		return v
	}
	return &Calendar{
		Name:              "TEST-US",
		Holidays:          []Date{d("2026-11-26"), d("2026-12-25"), d("2027-01-01"), d("2027-01-18")},
		ExtraBusinessDays: []Date{d("2027-01-09")},
		Through:           d("2027-12-31"),
	}
}

func TestBusinessDays(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	cal := testUS()
	tests := []struct {
		name  string
		at    string
		key   string
		start string
		end   string
	}{
		{name: "business day", at: "2026-11-25T15:00:00Z", key: "daily/2026-11-25", start: "2026-11-25T00:00:00-05:00", end: "2026-11-27T00:00:00-05:00"},
		{name: "holiday belongs to the day before", at: "2026-11-26T15:00:00Z", key: "daily/2026-11-25", start: "2026-11-25T00:00:00-05:00", end: "2026-11-27T00:00:00-05:00"},
		{name: "friday runs over the weekend", at: "2026-11-29T15:00:00Z", key: "daily/2026-11-27", start: "2026-11-27T00:00:00-05:00", end: "2026-11-30T00:00:00-05:00"},
		{name: "extra business saturday", at: "2027-01-09T15:00:00Z", key: "daily/2027-01-09", start: "2027-01-09T00:00:00-05:00", end: "2027-01-11T00:00:00-05:00"},
		{name: "holiday after new year weekend", at: "2027-01-01T15:00:00Z", key: "daily/2026-12-31", start: "2026-12-31T00:00:00-05:00", end: "2027-01-04T00:00:00-05:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PeriodAt(mustTime(t, tt.at), talon.Daily, ny, cal, "")
			if err != nil {
				t.Fatal(err)
			}
			if p.Key() != tt.key || !p.Start.Equal(mustTime(t, tt.start)) || !p.End.Equal(mustTime(t, tt.end)) {
				t.Errorf("got %s [%s, %s), want %s [%s, %s)", p.Key(), p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339), tt.key, tt.start, tt.end)
			}
		})
	}
	t.Run("shift by business days", func(t *testing.T) {
		p, err := PeriodAt(mustTime(t, "2027-01-19T15:00:00Z"), talon.Daily, ny, cal, "")
		if err != nil {
			t.Fatal(err)
		}
		q, err := Shift(p, -1, cal) // 18th is a holiday
		if err != nil || q.Key() != "daily/2027-01-15" {
			t.Errorf("Shift(-1) = %s, %v; want daily/2027-01-15", q.Key(), err)
		}
		q, err = Shift(p, -7, cal)
		if err != nil || q.Key() != "daily/2027-01-08" {
			t.Errorf("Shift(-7) = %s, %v; want daily/2027-01-08 (Saturday the 9th is an extra business day)", q.Key(), err)
		}
	})
	t.Run("beyond through is an error", func(t *testing.T) {
		_, err := PeriodAt(mustTime(t, "2028-01-03T15:00:00Z"), talon.Daily, ny, cal, "")
		if !errors.Is(err, ErrNotCovered) {
			t.Fatalf("err = %v, want ErrNotCovered", err)
		}
		if !strings.Contains(err.Error(), `calendar "TEST-US": 2028-01-03 is after its through date 2027-12-31`) {
			t.Errorf("err = %v, want it to name the calendar and dates", err)
		}
		// The last covered day needs the next business day for its End.
		if _, err := PeriodAt(mustTime(t, "2027-12-31T15:00:00Z"), talon.Daily, ny, cal, ""); !errors.Is(err, ErrNotCovered) {
			t.Errorf("last covered day: err = %v, want ErrNotCovered", err)
		}
	})
	t.Run("no business days at all", func(t *testing.T) {
		all := &Calendar{Name: "never", Weekend: []time.Weekday{0, 1, 2, 3, 4, 5, 6}}
		if _, err := PeriodAt(mustTime(t, "2027-01-19T15:00:00Z"), talon.Daily, ny, all, ""); err == nil {
			t.Error("want error for a calendar without business days")
		}
	})
	t.Run("oneshot by time", func(t *testing.T) {
		if _, err := PeriodAt(mustTime(t, "2027-01-19T15:00:00Z"), talon.Oneshot, ny, nil, ""); err == nil {
			t.Error("want error")
		}
	})
}
