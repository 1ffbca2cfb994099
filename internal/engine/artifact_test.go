package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/auth/runtoken"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/view"
)

const artifactSchedule = `
jobs:
  extract:
    executor: inprocess
    command: [extract]
    poll: 1h
    artifacts:
      report: "file:///data/{{period}}/report.csv"
  load:
    executor: inprocess
    command: [noop]
    poll: 1h
    constraints:
      artifact: "file:///data/{{period}}/*.csv"
`

// TestArtifactConstraint: a run waiting for an artifact passes in the
// step the artifact is added, not at its next poll (an hour later).
func TestArtifactConstraint(t *testing.T) {
	release := make(chan struct{})
	started := make(chan int64, 1)
	b := setup(t, artifactSchedule, mustTime(t, "2026-11-26T08:00:00Z"), map[string]inprocess.Func{
		"noop": noop,
		"extract": func(ctx context.Context, r inprocess.Run) error {
			started <- r.Run.ID
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		},
	})
	ctx := t.Context()
	load := b.trigger(t, "load", talon.TriggerRequest{Period: "daily/2026-11-26"})
	b.settle(t)
	got := b.runs(t, "load")[0]
	if got.State != talon.StateBlocked || got.Reason != "artifact: waiting for an artifact matching file:///data/2026-11-26/*.csv in daily/2026-11-26" {
		t.Fatalf("load before the artifact: %s %q", got.State, got.Reason)
	}
	// Another period's artifact, or one outside the pattern, changes nothing.
	b.trigger(t, "extract", talon.TriggerRequest{Period: "daily/2026-11-25"})
	if _, err := b.e.Step(ctx, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	id := startedRun(t, started)
	if _, err := b.e.AddArtifact(ctx, id, "file:///data/2026-11-25/report.csv", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.Step(ctx, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := b.runs(t, "load")[0]; got.State != talon.StateBlocked {
		t.Fatalf("load after another period's artifact: %s %q", got.State, got.Reason)
	}
	release <- struct{}{}
	b.settle(t)

	b.trigger(t, "extract", talon.TriggerRequest{Period: "daily/2026-11-26"})
	if _, err := b.e.Step(ctx, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	id = startedRun(t, started)
	a, err := b.e.AddArtifact(ctx, id, "file:///data/2026-11-26/report.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "report" || a.Period != "daily/2026-11-26" || a.Job != "extract" {
		t.Errorf("artifact = %+v, want the declared name report", a)
	}
	// One step at the same instant: the artifact's arrival is the event.
	if _, err := b.e.Step(ctx, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	got, err = b.st.GetRun(ctx, load.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State == talon.StateBlocked {
		t.Fatalf("load still blocked in the step the artifact was added: %q", got.Reason)
	}
	ds, err := b.st.Decisions(ctx, load.ID)
	if err != nil || len(ds) != 1 || ds[0].Action != talon.ActionPass || ds[0].Reason != fmt.Sprintf("file:///data/2026-11-26/report.csv added by run %d of extract", id) {
		t.Fatalf("decisions = %+v, %v", ds, err)
	}
	release <- struct{}{}
	b.settle(t)
	if got := b.runs(t, "load")[0]; got.State != talon.StateSucceeded {
		t.Fatalf("load = %s %q, want succeeded", got.State, got.Reason)
	}
	if rs := b.runs(t, "extract"); rs[1].State != talon.StateSucceeded || rs[1].Reason != "succeeded" {
		t.Fatalf("extract with its declared artifact = %s %q, want succeeded without a flag", rs[1].State, rs[1].Reason)
	}
	as, err := b.q.Artifacts(ctx, view.ArtifactFilter{Period: "daily/2026-11-26"})
	if err != nil || len(as) != 1 || as[0].ID != a.ID {
		t.Fatalf("Artifacts(daily/2026-11-26) = %+v, %v", as, err)
	}
	if _, err := b.q.Artifacts(ctx, view.ArtifactFilter{Period: "yesterday"}); err == nil {
		t.Errorf("Artifacts accepted a bad period key")
	}
}

func startedRun(t *testing.T, ch <-chan int64) int64 {
	t.Helper()
	select {
	case id := <-ch:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not start within 10s")
		return 0
	}
}

// TestDeclaredArtifacts: a run that succeeds without one of its job's
// declared artifacts stays succeeded, and its reason says which.
func TestDeclaredArtifacts(t *testing.T) {
	const sched = `
jobs:
  report:
    executor: inprocess
    command: [report]
    artifacts:
      csv: "s3://bucket/{{period}}/*.csv"
      summary: "file:///data/{{period}}/summary.txt"
      chart: "file:///data/{{period}}/chart.png"
`
	lines := map[string]string{}
	var mu sync.Mutex
	b := setup(t, sched, mustTime(t, "2026-11-26T08:00:00Z"), map[string]inprocess.Func{
		"report": func(ctx context.Context, r inprocess.Run) error {
			mu.Lock()
			out := lines[r.Run.Period]
			mu.Unlock()
			fmt.Fprint(r.Log, out)
			return nil
		},
	})
	lines["daily/2026-11-25"] = "::talon artifact s3://bucket/2026-11-25/sales.csv\n" +
		"::talon artifact file:///elsewhere/s.txt summary\n" +
		"::talon artifact file:///data/2026-11-25/chart.png\n" +
		"::talon progress 3/4 three done\n"
	lines["daily/2026-11-26"] = "::talon artifact s3://bucket/2026-11-26/sub/x.csv\n" + // not in the segment
		"::talon artifact javascript:alert(1)\n" + // refused
		"::talon progress 140%\n" // refused
	b.trigger(t, "report", talon.TriggerRequest{Period: "daily/2026-11-25"})
	b.trigger(t, "report", talon.TriggerRequest{Period: "daily/2026-11-26"})
	b.settle(t)
	rs := b.runs(t, "report")
	if rs[0].State != talon.StateSucceeded || rs[0].Reason != "succeeded" {
		t.Errorf("run with every declared artifact = %s %q", rs[0].State, rs[0].Reason)
	}
	if rs[1].State != talon.StateSucceeded || rs[1].Reason != "succeeded; declared artifacts chart, csv, summary not added" {
		t.Errorf("run without them = %s %q", rs[1].State, rs[1].Reason)
	}
	full, err := b.st.GetRun(t.Context(), rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, a := range full.Artifacts {
		names = append(names, a.Name)
	}
	if strings.Join(names, ",") != "csv,summary,chart" {
		t.Errorf("artifact names = %v, want csv,summary,chart", names)
	}
	if p := full.Progress; p == nil || p.ItemsDone != 3 || p.ItemsTotal != 4 || *p.Percent != 75 || p.Message != "three done" {
		t.Errorf("progress from 3/4 = %+v", p)
	}
	other, err := b.st.GetRun(t.Context(), rs[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Artifacts) != 1 || other.Progress != nil {
		t.Errorf("refused lines were recorded: artifacts %+v, progress %+v", other.Artifacts, other.Progress)
	}

	// One missing: singular.
	lines["daily/2026-11-27"] = "::talon artifact s3://bucket/2026-11-27/a.csv\n::talon artifact file:///data/2026-11-27/chart.png\n"
	b.trigger(t, "report", talon.TriggerRequest{Period: "daily/2026-11-27"})
	b.settle(t)
	if r := b.runs(t, "report")[2]; r.Reason != "succeeded; declared artifact summary not added" {
		t.Errorf("reason = %q", r.Reason)
	}
}

// TestRunToken: every run gets TALON_TOKEN, the token of its own run,
// and it reaches no log line, event, reason or API answer; without a
// minter it is empty, so the scheduler's own token never reaches jobs.
func TestRunToken(t *testing.T) {
	const sched = `
jobs:
  j:
    executor: inprocess
    command: [env]
`
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "s.yaml", []byte(sched))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src, err := runtoken.New(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, mint := range []bool{true, false} {
		t.Run(fmt.Sprintf("mint=%v", mint), func(t *testing.T) {
			var mu sync.Mutex
			var env []string
			ip := inprocess.New()
			ip.Register("env", func(ctx context.Context, r inprocess.Run) error {
				mu.Lock()
				env = r.Env
				mu.Unlock()
				return nil
			})
			var logs bytes.Buffer
			var logMu sync.Mutex
			cfg := engine.Config{
				Store: st, Schedule: s, Now: func() time.Time { return mustTime(t, "2026-11-26T08:00:00Z") },
				Executors: map[string]executor.Executor{"inprocess": ip}, LogDir: t.TempDir(),
				Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			if mint {
				cfg.RunToken = src.Mint
			}
			e, err := engine.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, _, err := e.Trigger(t.Context(), "j", talon.TriggerRequest{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if _, err := e.Settle(ctx, mustTime(t, "2026-11-26T08:00:00Z")); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			want := "TALON_TOKEN="
			if mint {
				want += src.Mint(r.ID)
			}
			var got []string
			for _, kv := range env {
				if strings.HasPrefix(kv, "TALON_TOKEN=") {
					got = append(got, kv)
				}
			}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("TALON_TOKEN in the run's environment = %q, want [%q]", got, want)
			}
			if !mint {
				return
			}
			tok := src.Mint(r.ID)
			d, err := query.New(st, e, nil).Run(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := json.Marshal(d)
			logMu.Lock()
			logged := logs.String()
			logMu.Unlock()
			for what, text := range map[string]string{"the API's run answer (events, decisions, reason)": string(answer), "the scheduler's log": logged} {
				if strings.Contains(text, tok) || strings.Contains(text, strings.TrimPrefix(tok, runtoken.Prefix)) {
					t.Errorf("the run's token reached %s", what)
				}
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
