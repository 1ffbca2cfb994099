package query_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/view"
)

type testBundle struct {
	e   *engine.Engine
	q   *query.Service
	st  store.Store
	now time.Time
}

// setup serves reads over a real SQLite store, with a real engine (stepped
// by hand at a fixed time) as the scheduler that holds the schedule.
func setup(t *testing.T) *testBundle {
	t.Helper()
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "schedule.yaml", []byte(`
jobs:
  talk:
    period: daily
    executor: inprocess
    command: [talk]
    triggers: [{schedule: "every day at 09:00"}]
  quiet:
    period: daily
    executor: inprocess
    command: [talk]
    constraints: {after: [talk]}
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ip := inprocess.New()
	ip.Register("talk", func(_ context.Context, r inprocess.Run) error {
		_, err := io.WriteString(r.Log, "hello from "+r.Run.Job+"\n")
		return err
	})
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e, err := engine.New(engine.Config{Store: st, Schedule: s, Now: clock, LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"inprocess": ip}})
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{e: e, q: query.New(st, e, clock), st: st, now: now}
}

func (b *testBundle) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := b.e.Settle(ctx, b.now); err != nil {
		t.Fatal(err)
	}
}

func code(err error) string {
	var te *talon.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return ""
}

// A run's log is found by its id: the log of a run that never started is
// not found (not an empty file somewhere), a finished run's log is what it
// wrote, and an unknown run is not found.
func TestLogsByRunID(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	talk, _, err := b.e.Trigger(ctx, "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	quiet, _, err := b.e.Trigger(ctx, "quiet", talon.TriggerRequest{Period: "daily/2026-11-27"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.q.Logs(ctx, talk.ID)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(text) != "hello from talk\n" {
		t.Fatalf("log of run %d = %q, %v", talk.ID, text, err)
	}
	if _, err := b.q.Logs(ctx, quiet.ID); code(err) != talon.ENOTFOUND {
		t.Fatalf("log of a run that never started: %v, want not_found", err)
	}
	if _, err := b.q.Logs(ctx, 999); code(err) != talon.ENOTFOUND {
		t.Fatalf("log of an unknown run: %v, want not_found", err)
	}
}

// The reads answer view types: runs filtered as asked, periods with their
// counts, jobs with next fire and pause, and a bad period key is invalid.
func TestReads(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	if _, _, err := b.e.Trigger(ctx, "talk", talon.TriggerRequest{}); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	if _, _, err := b.e.Pause(ctx, "quiet", "alice", "disk full"); err != nil {
		t.Fatal(err)
	}

	runs, err := b.q.Runs(ctx, view.RunFilter{Job: "talk", States: []talon.State{talon.StateSucceeded}, Limit: 10})
	if err != nil || len(runs) != 1 || runs[0].Job != "talk" || runs[0].Artifacts == nil {
		t.Fatalf("runs = %+v, %v (want the one succeeded run, artifacts loaded)", runs, err)
	}
	if _, err := b.q.Runs(ctx, view.RunFilter{Period: "yesterday"}); code(err) != talon.EINVALID {
		t.Fatalf("runs of a bad period key: %v, want invalid", err)
	}
	if _, err := b.q.Artifacts(ctx, view.ArtifactFilter{Period: "yesterday"}); code(err) != talon.EINVALID {
		t.Fatalf("artifacts of a bad period key: %v, want invalid", err)
	}

	ps, err := b.q.Periods(ctx, view.PeriodFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := view.PeriodInfo{Period: "daily/2026-11-26", Job: "talk", Counts: map[talon.State]int{talon.StateSucceeded: 1}, LatestRun: runs[0].ID, Latest: talon.StateSucceeded}
	if len(ps) != 1 || ps[0].Period != want.Period || ps[0].Job != want.Job || ps[0].Counts[talon.StateSucceeded] != 1 || ps[0].LatestRun != want.LatestRun || ps[0].Latest != want.Latest {
		t.Fatalf("periods = %+v, want [%+v]", ps, want)
	}

	jobs, err := b.q.Jobs(ctx)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("jobs = %+v, %v", jobs, err)
	}
	byName := map[string]view.JobInfo{}
	for _, j := range jobs {
		byName[j.Name] = j
	}
	if got := byName["talk"].Next; got != "2026-11-26T09:00:00Z" {
		t.Errorf("talk's next fire = %q, want 2026-11-26T09:00:00Z (the engine's rule at the service's clock)", got)
	}
	if p := byName["quiet"].Paused; p == nil || p.By != "alice" || p.Reason != "disk full" {
		t.Errorf("quiet's pause = %+v", p)
	}
	if byName["talk"].Paused != nil {
		t.Errorf("talk is not paused: %+v", byName["talk"].Paused)
	}

	if _, err := b.q.PeriodRange(ctx, "tlak", "daily/2026-11-01", "daily/2026-11-02"); code(err) != talon.ENOTFOUND {
		t.Fatalf("range of an unknown job: %v, want not_found", err)
	}
	entries, err := b.q.Audit(ctx, view.AuditFilter{Limit: 5})
	if err != nil || len(entries) != 0 {
		t.Fatalf("audit = %+v, %v (nothing recorded: the service writes nothing)", entries, err)
	}
}
