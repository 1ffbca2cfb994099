package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
)

// While a job is paused its time and completion triggers record each
// fire as a skipped run naming who paused it; its blocked runs stay
// blocked; external triggers are refused. On resume the blocked runs
// start at once, the skipped fires stay skipped, and firing goes on.
func TestPause(t *testing.T) {
	const sched = `
jobs:
  hourly:
    period: daily
    poll: 1h
    triggers: [{schedule: "0 * * * *"}]
    executor: inprocess
    command: [noop]
  up:
    period: daily
    executor: inprocess
    command: [noop]
  down:
    period: daily
    poll: 1h
    triggers: [{after: up}]
    executor: inprocess
    command: [noop]
`
	now := mustTime(t, "2026-11-26T09:30:00Z")
	ctx := context.Background()
	b := setup(t, sched, now, map[string]inprocess.Func{"noop": noop})
	b.settle(t)
	// A retry made before the pause waits in blocked, like any run.
	blocked := b.trigger(t, "hourly", talon.TriggerRequest{Period: "daily/2026-11-25"})
	if _, err := b.st.Transition(ctx, []store.Transition{{RunID: blocked.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked, Now: now}}); err != nil {
		t.Fatal(err)
	}

	p, created, err := b.e.Pause(ctx, "hourly", "alice", "warehouse maintenance")
	if err != nil || !created || p.By != "alice" {
		t.Fatalf("Pause = %+v, %v, %v", p, created, err)
	}
	if _, created, err := b.e.Pause(ctx, "hourly", "bob", ""); err != nil || created {
		t.Fatalf("second Pause: created %v, err %v; want the first pause kept", created, err)
	}
	if _, _, err := b.e.Pause(ctx, "nosuch", "alice", ""); !isCode(err, talon.ENOTFOUND) {
		t.Fatalf("Pause of an unknown job: %v, want not_found", err)
	}
	if _, _, err := b.e.Pause(ctx, "down", "alice", "no downstream"); err != nil {
		t.Fatal(err)
	}
	jobs, err := b.q.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if paused := j.Paused != nil; paused != (j.Name == "hourly" || j.Name == "down") {
			t.Errorf("job %s: paused %+v", j.Name, j.Paused)
		}
	}
	if _, _, err := b.e.Trigger(ctx, "hourly", talon.TriggerRequest{}); !isCode(err, talon.ECONFLICT) || !strings.Contains(err.Error(), "paused by alice") {
		t.Fatalf("Trigger of a paused job: %v, want a conflict naming the pause", err)
	}

	// Three fires while paused (10:00, 11:00, 12:00), and an upstream
	// success whose completion trigger fires into the paused job.
	b.trigger(t, "up", talon.TriggerRequest{})
	for h := 10; h <= 12; h++ {
		b.at(t, now.Add(time.Duration(h-9)*time.Hour-30*time.Minute))
	}
	var fired []talon.Run
	for _, r := range b.runs(t, "hourly") {
		if r.ID == blocked.ID {
			if r.State != talon.StateBlocked || !strings.Contains(r.Reason, "paused by alice") {
				t.Fatalf("blocked run during the pause: %s (%s), want blocked, saying why", r.State, r.Reason)
			}
			continue
		}
		fired = append(fired, r)
	}
	if len(fired) != 3 {
		t.Fatalf("%d runs for 3 fires during the pause, want 3", len(fired))
	}
	for _, r := range fired {
		if r.State != talon.StateSkipped || !strings.Contains(r.Reason, "skipped: job paused by alice") || !strings.Contains(r.Reason, "warehouse maintenance") {
			t.Errorf("fire during the pause: run %d %s (%s), want skipped naming the pause", r.ID, r.State, r.Reason)
		}
	}
	down := b.runs(t, "down")
	if len(down) != 1 || down[0].State != talon.StateSkipped || !strings.Contains(down[0].Reason, "paused by alice") {
		t.Fatalf("completion trigger into a paused job: %+v, want one skipped run", down)
	}

	if _, err := b.e.Resume(ctx, "hourly", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.Resume(ctx, "hourly", "alice"); !isCode(err, talon.ECONFLICT) {
		t.Fatalf("Resume of a job not paused: %v, want conflict", err)
	}
	b.settle(t) // the clock has not moved: the blocked run starts at once
	if r, _ := b.st.GetRun(ctx, blocked.ID); r.State != talon.StateSucceeded {
		t.Fatalf("blocked run after resume: %s (%s), want succeeded", r.State, r.Reason)
	}
	if n := len(b.runs(t, "hourly")); n != 4 {
		t.Fatalf("%d runs after resume, want 4: the skipped fires are not caught up", n)
	}
	b.at(t, now.Add(3*time.Hour+30*time.Minute)) // 13:00 fires again
	runs := b.runs(t, "hourly")
	if last := runs[len(runs)-1]; len(runs) != 5 || last.State != talon.StateSucceeded {
		t.Fatalf("after resume the 13:00 fire: %d runs, last %s (%s)", len(runs), last.State, last.Reason)
	}
}

func isCode(err error, code string) bool {
	var te *talon.Error
	return errors.As(err, &te) && te.Code == code
}

// A failed run marked succeeded lets its dependent start at once (no
// poll) and fires its completion triggers; a run marked failed is not
// retried; a running run is refused.
func TestMark(t *testing.T) {
	const sched = `
jobs:
  extract:
    period: daily
    poll: 1h
    retries: {max: 3}
    executor: inprocess
    command: [fail]
  load:
    period: daily
    poll: 1h
    constraints: {after: [extract]}
    executor: inprocess
    command: [noop]
  report:
    period: daily
    triggers: [{after: extract}]
    executor: inprocess
    command: [noop]
  slow:
    period: daily
    executor: inprocess
    command: [block]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	ctx := context.Background()
	b := setup(t, sched, now, map[string]inprocess.Func{
		"noop":  noop,
		"fail":  func(context.Context, inprocess.Run) error { return errors.New("boom") },
		"block": func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return context.Cause(ctx) },
	})
	b.trigger(t, "load", talon.TriggerRequest{})
	b.trigger(t, "extract", talon.TriggerRequest{})
	b.settle(t)
	// Every attempt fails, retries included.
	ex := b.runs(t, "extract")
	last := ex[len(ex)-1]
	if len(ex) != 4 || last.State != talon.StateFailed {
		t.Fatalf("extract: %d runs, the last %s (%s); want 4, failed", len(ex), last.State, last.Reason)
	}
	nBefore := len(ex)

	if _, err := b.e.Mark(ctx, last.ID, talon.StateSucceeded, "", "alice"); !isCode(err, talon.EINVALID) {
		t.Fatalf("mark without a reason: %v, want invalid", err)
	}
	r, err := b.e.Mark(ctx, last.ID, talon.StateSucceeded, "loaded by hand", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != talon.StateSucceeded || r.Reason != "marked succeeded by alice: loaded by hand" || !r.Finished.Equal(*last.Finished) {
		t.Fatalf("marked run: %s (%s) finished %v, want succeeded, finished kept at %v", r.State, r.Reason, r.Finished, last.Finished)
	}
	b.settle(t) // the clock has not moved: no poll can have happened
	if l := b.runs(t, "load")[0]; l.State != talon.StateSucceeded {
		t.Fatalf("load after extract was marked succeeded: %s (%s), want succeeded at once", l.State, l.Reason)
	}
	if rep := b.runs(t, "report"); len(rep) != 1 || rep[0].State != talon.StateSucceeded {
		t.Fatalf("completion trigger of a run marked succeeded: %+v, want one succeeded report", rep)
	}
	evs, err := b.st.Events(ctx, last.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[len(evs)-1]; ev.From != talon.StateFailed || ev.To != talon.StateSucceeded || ev.Reason != "marked succeeded by alice: loaded by hand" {
		t.Fatalf("mark event: %+v", ev)
	}

	// Marked failed: no retry, though the job has retries left.
	r, err = b.e.Mark(ctx, last.ID, talon.StateFailed, "the data was wrong", "bob")
	if err != nil {
		t.Fatal(err)
	}
	b.at(t, now.Add(2*time.Hour))
	if n := len(b.runs(t, "extract")); n != nBefore {
		t.Fatalf("%d extract runs after a mark as failed, want %d: a mark is never retried", n, nBefore)
	}
	if _, err := b.e.Mark(ctx, last.ID, talon.StateFailed, "again", "bob"); !isCode(err, talon.ECONFLICT) {
		t.Fatalf("mark to the state the run is in: %v, want conflict", err)
	}

	// A running run is refused: cancel it first. (Step, not settle: a
	// settle waits for running runs to end.)
	l2 := b.trigger(t, "slow", talon.TriggerRequest{Period: "daily/2026-11-20"})
	if _, err := b.e.Step(ctx, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.st.GetRun(ctx, l2.ID); got.State != talon.StateRunning {
		t.Fatalf("slow: %s", got.State)
	}
	if _, err := b.e.Mark(ctx, l2.ID, talon.StateSucceeded, "done by hand", "alice"); !isCode(err, talon.ECONFLICT) || !strings.Contains(err.Error(), "cancel it first") {
		t.Fatalf("mark of a running run: %v, want a conflict saying to cancel first", err)
	}
	if _, err := b.e.Cancel(ctx, l2.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	b.settle(t)

	// A blocked run is marked without running.
	blocked := b.trigger(t, "load", talon.TriggerRequest{Period: "daily/2026-11-21"})
	b.settle(t)
	if got, _ := b.st.GetRun(ctx, blocked.ID); got.State != talon.StateBlocked {
		t.Fatalf("load for a day without extract: %s", got.State)
	}
	r, err = b.e.Mark(ctx, blocked.ID, talon.StateSucceeded, "loaded by hand", "alice")
	if err != nil || r.State != talon.StateSucceeded || r.Started != nil {
		t.Fatalf("mark of a blocked run: %+v, %v; want succeeded, never started", r, err)
	}
	b.settle(t)
}

// A job's secret env is read when a run starts (a rotated file is picked
// up), the job sees the value, and the run's log shows *** in its place,
// also when the job writes it in pieces; a missing secret fails the run's
// start with a reason that names it but no value.
func TestSecretEnv(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "pw")
	const canary = "canary-7f3a9c-secret"
	if err := os.WriteFile(secretFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(canary))
	yaml := `
jobs:
  use-secret:
    period: daily
    executor: local
    env:
      PW: {file: ` + secretFile + `}
      TOKEN: {env: TEST_TALON_TOKEN}
      PLAIN: visible
    command: [sh, -c, 'echo "pw=$PW token=$TOKEN plain=$PLAIN"; printf "%s" "$PW" | head -c 6; printf "%s\n" "${PW#canary}"; [ "$(printf %s "$PW" | sha256sum | cut -d" " -f1)" = "$WANT" ]']
  missing:
    period: daily
    executor: local
    env: {PW: {file: ` + filepath.Join(dir, "absent") + `}}
    command: ["true"]
`
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The job compares its secret with the expected hash through WANT, a
	// literal of its own env.
	useSecret := s.Jobs[slices.IndexFunc(s.Jobs, func(j *schedule.Job) bool { return j.Name == "use-secret" })]
	useSecret.Env["WANT"] = talon.EnvValue{Value: hex.EncodeToString(want[:])}
	logDir := t.TempDir()
	now := mustTime(t, "2026-11-26T10:00:00Z")
	e, err := engine.New(engine.Config{
		Store: st, Schedule: s, Now: func() time.Time { return now }, LogDir: logDir,
		Executors: map[string]executor.Executor{"local": local.New(nil)},
		LookupEnv: func(k string) (string, bool) {
			if k == "TEST_TALON_TOKEN" {
				return "tok-" + canary, true
			}
			return "", false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r, _, err := e.Trigger(ctx, "use-secret", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := e.Trigger(ctx, "missing", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Settle(ctx, now); err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetRun(ctx, r.ID)
	logText, err := os.ReadFile(e.LogPath(got))
	if err != nil {
		t.Fatal(err)
	}
	if got.State != talon.StateSucceeded {
		t.Fatalf("job with secrets: %s (%s), want succeeded (it checks the value it saw); log:\n%s", got.State, got.Reason, logText)
	}
	if strings.Contains(string(logText), "canary") || strings.Contains(string(logText), "7f3a9c") {
		t.Fatalf("the secret reached the run's log:\n%s", logText)
	}
	if want := "pw=*** token=*** plain=visible\n"; !strings.HasPrefix(string(logText), want) {
		t.Fatalf("log = %q, want it to start with %q", logText, want)
	}
	mr, _ := st.GetRun(ctx, m.ID)
	if mr.State != talon.StateFailed || !strings.Contains(mr.Reason, "secret PW: read "+filepath.Join(dir, "absent")) {
		t.Fatalf("missing secret: %s (%s), want failed naming the secret", mr.State, mr.Reason)
	}
	// Rotated: the next run reads the new value.
	if err := os.WriteFile(secretFile, []byte("rotated-value-42"), 0o600); err != nil {
		t.Fatal(err)
	}
	rot := sha256.Sum256([]byte("rotated-value-42"))
	useSecret.Env["WANT"] = talon.EnvValue{Value: hex.EncodeToString(rot[:])}
	r2, _, err := e.Trigger(ctx, "use-secret", talon.TriggerRequest{Period: "daily/2026-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Settle(ctx, now); err != nil {
		t.Fatal(err)
	}
	got2, _ := st.GetRun(ctx, r2.ID)
	logText, _ = os.ReadFile(e.LogPath(got2))
	if got2.State != talon.StateSucceeded || strings.Contains(string(logText), "rotated") {
		t.Fatalf("after rotation: %s (%s), log %q", got2.State, got2.Reason, logText)
	}
}
