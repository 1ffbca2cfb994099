package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/trigger"
)

// TestCalendarMatchesEngine checks that `talon calendar` shows, for each
// fire, the period the engine's run gets: a real engine over a SQLite
// store is stepped to each fire of a one-job schedule, and its runs are
// compared with the verb's JSON for the same expression, zone and period
// type. It once showed an adjusted fire's own day and the second day of
// a window across midnight.
func TestCalendarMatchesEngine(t *testing.T) {
	const calendars = `calendars:
  uk:
    holidays: [2026-11-16, 2026-12-25, 2026-12-28, 2027-01-01]
`
	tests := []struct {
		name   string
		expr   string
		tz     string
		period talon.PeriodType
		after  string
		n      int
	}{
		{name: "adjusted fire keeps its date's period", expr: "15th of month at 09:00 adjust preceding using uk",
			tz: "UTC", period: talon.Daily, after: "2026-10-01T00:00:00Z", n: 6},
		{name: "window across midnight", expr: "on fridays: every 15 minutes between 10pm-2am",
			tz: "UTC", period: talon.Daily, after: "2026-11-27T21:00:00Z", n: 20},
		{name: "window across midnight in a zone", expr: "on fridays: every 30 minutes between 11pm-1am",
			tz: "Europe/London", period: talon.Daily, after: "2026-10-23T00:00:00Z", n: 10},
		{name: "following adjustment", expr: "1st of month at 06:00 adjust following using uk",
			tz: "Europe/London", period: talon.Daily, after: "2026-10-15T00:00:00Z", n: 5},
		{name: "cron across the end of summer time", expr: "30 1 * * *",
			tz: "Europe/London", period: talon.Daily, after: "2026-10-23T00:00:00Z", n: 6},
		{name: "jitter never moves the period", expr: "every 15 minutes between 11pm-midnight jitter 20m",
			tz: "UTC", period: talon.Daily, after: "2026-11-26T22:50:00Z", n: 6},
		{name: "expression in another zone", expr: "daily at 23:30 in America/New_York",
			tz: "UTC", period: talon.Daily, after: "2026-11-26T00:00:00Z", n: 3},
		{name: "business day of month, monthly periods", expr: "last business day of month at 18:00 using uk",
			tz: "Europe/London", period: talon.Monthly, after: "2026-10-01T00:00:00Z", n: 4},
		{name: "weekly periods", expr: "every mon,fri 08:30",
			tz: "Europe/Paris", period: talon.Weekly, after: "2026-11-26T00:00:00Z", n: 5},
		{name: "hourly periods", expr: "@every 90m",
			tz: "UTC", period: talon.Hourly, after: "2026-11-26T00:00:00Z", n: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(dir, "schedule.yaml")
			src := calendars + fmt.Sprintf("jobs:\n  j:\n    executor: inprocess\n    command: [noop]\n    period: %s\n    timezone: %s\n    schedule: %s\n",
				tt.period, tt.tz, strconv.Quote(tt.expr))
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			after, err := time.Parse(time.RFC3339, tt.after)
			if err != nil {
				t.Fatal(err)
			}

			// What the engine does.
			sched, err := schedule.Load(offlineOptions(), file)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			st, err := sqlite.Open(t.Context(), filepath.Join(dir, "talon.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			e, err := engine.New(engine.Config{
				Store: st, Schedule: sched, Now: func() time.Time { return after },
				Executors: map[string]executor.Executor{"inprocess": inprocess.New()},
				LogDir:    filepath.Join(dir, "logs"),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			// The first step meets the trigger and starts it at after; then
			// the clock jumps to each fire's start.
			if _, err := e.Settle(ctx, after); err != nil {
				t.Fatal(err)
			}
			trig := sched.ByName["j"].Times[0]
			var want []trigger.Fire
			for at := after; len(want) < tt.n; {
				f, err := trigger.NextFire(trig, at)
				if err != nil || f.At.IsZero() {
					t.Fatalf("next fire after %s: %v, %v", at, f, err)
				}
				if _, err := e.Settle(ctx, f.At); err != nil {
					t.Fatal(err)
				}
				want = append(want, f)
				at = f.At
			}
			runs, err := st.ListRuns(ctx, store.RunFilter{Job: "j"})
			if err != nil {
				t.Fatal(err)
			}
			sort.Slice(runs, func(i, k int) bool { return runs[i].FireTime.Before(runs[k].FireTime) })
			if len(runs) != tt.n {
				t.Fatalf("engine made %d runs, want %d", len(runs), tt.n)
			}

			// What the verb shows.
			var stdout, stderr bytes.Buffer
			g := &globals{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, loc: time.UTC}
			args := []string{"calendar", "-o", "json", "--schedule", file, "--tz", tt.tz, "--period", string(tt.period),
				"--after", tt.after, "-n", strconv.Itoa(tt.n), tt.expr}
			if code := g.run(ctx, args); code != 0 {
				t.Fatalf("talon %v: exit %d\n%s", args, code, stderr.String())
			}
			var shown []Fire
			if err := json.Unmarshal(stdout.Bytes(), &shown); err != nil {
				t.Fatalf("calendar JSON: %v\n%s", err, stdout.String())
			}
			if len(shown) != tt.n {
				t.Fatalf("calendar showed %d fires, want %d", len(shown), tt.n)
			}
			for i, r := range runs {
				if !r.FireTime.Equal(want[i].Nominal) {
					t.Errorf("run %d fired at %s, want %s", i, r.FireTime, want[i].Nominal)
				}
				// Jitter is seeded per job, which the verb does not know;
				// only the nominal instant is the expression's own.
				if got := shown[i].Time; want[i].At.Equal(want[i].Nominal) && got != want[i].At.UTC().Format(time.RFC3339) {
					t.Errorf("fire %d: calendar shows %s, the run starts at %s", i, got, want[i].At.UTC().Format(time.RFC3339))
				}
				if shown[i].Period != r.Period {
					t.Errorf("fire %d at %s: calendar shows %s, the engine's run is for %s", i, shown[i].Local, shown[i].Period, r.Period)
				}
			}
		})
	}
}
