package trigger

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// BenchmarkNext compares Next with robfig/cron v3 on the same expressions
// (Talon first, then robfig, per expression):
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
		at, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/talon", func(b *testing.B) {
			tr, err := Parse(c.expr, Options{Location: c.loc})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				tr.Next(at)
			}
		})
		b.Run(c.name+"/robfig", func(b *testing.B) {
			s, err := cron.ParseStandard("CRON_TZ=" + c.loc.String() + " " + c.expr)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Next(at)
			}
		})
	}
}
