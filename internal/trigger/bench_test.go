package trigger

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/talonhq/talon/internal/calendar"
)

// BenchmarkNext compares Next with robfig/cron v3 on the same cron
// expressions (Talon first, then robfig, per expression), and times the
// English seed:
//
//	go test -run '^$' -bench BenchmarkNext -benchmem ./internal/trigger
func BenchmarkNext(b *testing.B) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		expr string
		loc  *time.Location
		at   string
	}{
		{name: "every-minute", expr: "* * * * *", loc: time.UTC, at: "2026-11-26T18:45:30Z"},
		{name: "business-quarter-hours", expr: "*/15 7-9 * * 1-5", loc: time.UTC, at: "2026-11-27T09:50:00Z"},
		{name: "daily-ny", expr: "30 6 * * *", loc: ny, at: "2026-11-26T18:45:00Z"},
		{name: "monthly-15th", expr: "0 9 15 * *", loc: time.UTC, at: "2026-11-26T18:45:00Z"},
		{name: "yearly-leap-day", expr: "0 0 29 2 *", loc: time.UTC, at: "2026-11-26T18:45:00Z"},
		{name: "ny-fall-back-day", expr: "*/30 0-4 * * *", loc: ny, at: "2027-11-07T04:00:00Z"},
	}
	for _, c := range cases {
		cronCase(b, c.name, c.expr, c.loc, c.at)
	}
	// English: the seed (docs/triggers.md#clauses), target < 2 µs per Next; robfig
	// needs three schedules for it, so it has no robfig column.
	english := []struct{ name, expr, at string }{
		{name: "seed-mid-window", expr: "every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm", at: "2026-11-27T09:40:00Z"},
		{name: "seed-after-last", expr: "every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm", at: "2026-11-27T16:58:00Z"},
		{name: "seed-ny-weekdays", expr: "on weekdays: every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm in America/New_York", at: "2026-11-27T22:00:00Z"},
		{name: "last-business-day-test-us", expr: "last business day of month at 18:00 using TEST-US", at: "2026-12-01T00:00:00Z"},
	}
	cals := map[string]*calendar.Calendar{"TEST-US": testUS(b)}
	for _, c := range english {
		at, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/talon", func(b *testing.B) {
			tr, err := Parse(c.expr, Options{Calendars: cals})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				tr.Next(at)
			}
		})
	}
}

// cronCase runs one cron expression through Talon and robfig.
func cronCase(b *testing.B, name, expr string, loc *time.Location, atText string) {
	at, err := time.Parse(time.RFC3339, atText)
	if err != nil {
		b.Fatal(err)
	}
	b.Run(name+"/talon", func(b *testing.B) {
		tr, err := Parse(expr, Options{Location: loc})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			tr.Next(at)
		}
	})
	b.Run(name+"/robfig", func(b *testing.B) {
		s, err := cron.ParseStandard("CRON_TZ=" + loc.String() + " " + expr)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			s.Next(at)
		}
	})
}
