package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
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

// logCounter counts the statements a store makes for runs' logs.
type logCounter struct {
	store.Store
	appends, reads atomic.Int64
}

func (c *logCounter) AppendLog(ctx context.Context, runID, off int64, data []byte) error {
	c.appends.Add(1)
	return c.Store.AppendLog(ctx, runID, off, data)
}

func (c *logCounter) ReadLog(ctx context.Context, runID, off int64, limit int) ([]byte, error) {
	c.reads.Add(1)
	return c.Store.ReadLog(ctx, runID, off, limit)
}

func (c *logCounter) LogSize(ctx context.Context, runID int64) (int64, error) {
	c.reads.Add(1)
	return c.Store.LogSize(ctx, runID)
}

const logsSchedule = `
jobs:
  quiet:
    period: daily
    executor: inprocess
    command: [noop]
  quiet-local:
    period: daily
    command: ["true"]
  talk:
    period: daily
    executor: inprocess
    command: [talk]
`

func openLogsSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// logsEngine is an engine on st with the in-process functions noop and
// talk (writes n bytes of output), the local executor, and the given
// log limit.
func logsEngine(t *testing.T, st store.Store, limit int64, talk int) (*engine.Engine, string) {
	t.Helper()
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(logsSchedule))
	if err != nil {
		t.Fatal(err)
	}
	ip := inprocess.New()
	ip.Register("talk", func(_ context.Context, r inprocess.Run) error {
		line := strings.Repeat("x", 99) + "\n"
		for range talk / len(line) {
			if _, err := io.WriteString(r.Log, line); err != nil {
				return err
			}
		}
		return nil
	})
	dir := t.TempDir()
	e, err := engine.New(engine.Config{Store: st, Schedule: s, LogDir: dir, LogLimit: limit, Now: func() time.Time { return logsNow },
		Executors: map[string]executor.Executor{"inprocess": ip, "local": local.New(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	return e, dir
}

// settleAll settles e at a fixed time (every run ends) and returns the
// runs of the store.
func settleAll(t *testing.T, e *engine.Engine, st store.Store) []talon.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := e.Settle(ctx, logsNow); err != nil {
		t.Fatal(err)
	}
	rs, err := st.ListRuns(ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

var logsNow = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// Runs that write nothing cost the log store nothing: no statement, in
// process or as local processes. A run that writes 10 KiB costs one
// (one batch), not one per line.
func TestLogsCostNothingWithoutOutput(t *testing.T) {
	t.Parallel()
	c := &logCounter{Store: openLogsSQLite(t)}
	e, _ := logsEngine(t, c, 0, 10_000)
	ctx := t.Context()
	for i := range 20 {
		for _, job := range []string{"quiet", "quiet-local"} {
			if _, _, err := e.Trigger(ctx, job, talon.TriggerRequest{Key: strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs := settleAll(t, e, c)
	for _, r := range rs {
		if r.State != talon.StateSucceeded {
			t.Fatalf("run %d (%s): %s, %s", r.ID, r.Job, r.State, r.Reason)
		}
	}
	if n, m := c.appends.Load(), c.reads.Load(); n != 0 || m != 0 {
		t.Fatalf("40 runs without output made %d log writes and %d log reads, want none", n, m)
	}
	if _, _, err := e.Trigger(ctx, "talk", talon.TriggerRequest{}); err != nil {
		t.Fatal(err)
	}
	settleAll(t, e, c)
	if n := c.appends.Load(); n != 1 {
		t.Fatalf("a run writing 100 lines at once made %d log writes, want 1", n)
	}
}

// The store keeps the first LogLimit bytes of a run's output and a note
// saying where the rest is; the log file keeps it all.
func TestLogLimit(t *testing.T) {
	t.Parallel()
	st := openLogsSQLite(t)
	e, dir := logsEngine(t, st, 1000, 5000)
	r, _, err := e.Trigger(t.Context(), "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	settleAll(t, e, st)
	path := filepath.Join(dir, "talk", strconv.FormatInt(r.ID, 10)+".log")
	file, err := os.ReadFile(path)
	if err != nil || len(file) != 5000 {
		t.Fatalf("log file: %d bytes, %v; want 5000", len(file), err)
	}
	stored, err := st.ReadLog(t.Context(), r.ID, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := string(file[:1000]) + "\n[talon: this run's output passed 1000 bytes; the state store keeps no more of it; the whole output is in " + path + "]\n"
	if string(stored) != want {
		t.Fatalf("stored log = %q…%q (%d bytes), want the first 1000 bytes and the note %q", stored[:20], stored[min(len(stored), 990):], len(stored), want[1000:])
	}
}

// A scheduler that died (its process gone, on this host) had written the
// last of a run's output to the log file but not yet to the store: the
// scheduler that declares the run lost stores it first.
func TestLostRunLogCaughtUp(t *testing.T) {
	t.Parallel()
	st := openLogsSQLite(t)
	e, _ := logsEngine(t, st, 0, 0)
	ctx := t.Context()
	host, _ := os.Hostname()
	deadDir := t.TempDir()
	if _, err := st.Heartbeat(ctx, store.Instance{ID: "dead", Host: host, PID: 1 << 30, Started: logsNow, Heartbeat: logsNow, LogDir: deadDir}); err != nil {
		t.Fatal(err)
	}
	res, err := st.CreateRuns(ctx, []store.CreateRun{{Job: "quiet", Period: "daily/2026-11-26", Trigger: "api", Executor: "inprocess", Now: logsNow}})
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].Run.ID
	for _, to := range []talon.State{talon.StateReady, talon.StateRunning} {
		rs, err := st.Transition(ctx, []store.Transition{{RunID: id, From: []talon.State{talon.StateBlocked, talon.StateReady}, To: to, Now: logsNow, Owner: "dead", Handle: "func:noop"}})
		if err != nil || rs[0].Err != nil {
			t.Fatal(err, rs)
		}
	}
	if err := st.AppendLog(ctx, id, 0, []byte("stored\n")); err != nil {
		t.Fatal(err)
	}
	whole := "stored\nwritten to the file only\n"
	path := filepath.Join(deadDir, "quiet", strconv.FormatInt(id, 10)+".log")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(whole), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := settleAll(t, e, st)
	if r := rs[len(rs)-1]; r.ID != id || r.State != talon.StateFailed || !strings.HasPrefix(r.Reason, "lost: ") {
		t.Fatalf("run %d: %s (%s), want failed, lost", r.ID, r.State, r.Reason)
	}
	stored, err := st.ReadLog(ctx, id, 0, 1<<20)
	if err != nil || string(stored) != whole {
		t.Fatalf("stored log = %q, %v; want %q", stored, err, whole)
	}
}

// resumer is an executor that re-attaches to runs still going
// (executor.Reattacher): the run prints one more line and succeeds.
type resumer struct{ secrets []string }

func (resumer) Start(context.Context, executor.Spec) (executor.Process, error) {
	return nil, errors.New("not started in this test")
}

func (resumer) Recover(context.Context, talon.Run, string) (executor.Process, error) {
	return nil, fmt.Errorf("%w: Reattach is the way", executor.ErrLost)
}

func (r *resumer) Reattach(ctx context.Context, s executor.Spec, handle string) (executor.Process, error) {
	size, err := s.Logs.LogSize(ctx, s.Run.ID)
	if err != nil {
		return nil, err
	}
	r.secrets = s.Secrets
	out, err := executor.NewOutput(s, executor.OutputOptions{Offset: size})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "resumed %s with pw=%s\n", handle, os.Getenv("RESUME_SECRET"))
	if err := out.Close(); err != nil {
		return nil, err
	}
	return ended{handle}, nil
}

type ended struct{ h string }

func (p ended) Handle() string       { return p.h }
func (ended) Wait() executor.Outcome { return executor.Outcome{Succeeded: true, Reason: "succeeded"} }
func (ended) Cancel(error)           {}

// A run whose scheduler died is resumed through an executor that can
// carry on with its output: the output goes on after what the dead
// scheduler stored (and what its file had beyond), masked.
func TestResumeContinuesTheLog(t *testing.T) {
	t.Setenv("RESUME_SECRET", "hunter2")
	st := openLogsSQLite(t)
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"remote"}}, "schedule.yaml", []byte(`
jobs:
  far:
    period: daily
    executor: remote
    command: [x]
    env:
      PW: {env: RESUME_SECRET}
`))
	if err != nil {
		t.Fatal(err)
	}
	ex := &resumer{}
	e, err := engine.New(engine.Config{Store: st, Schedule: s, LogDir: t.TempDir(), Now: func() time.Time { return logsNow },
		Executors: map[string]executor.Executor{"remote": ex}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	host, _ := os.Hostname()
	deadDir := t.TempDir()
	if _, err := st.Heartbeat(ctx, store.Instance{ID: "dead", Host: host, PID: 1 << 30, Started: logsNow, Heartbeat: logsNow, LogDir: deadDir}); err != nil {
		t.Fatal(err)
	}
	res, err := st.CreateRuns(ctx, []store.CreateRun{{Job: "far", Period: "daily/2026-11-26", Trigger: "api", Executor: "remote", Now: logsNow}})
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].Run.ID
	for _, to := range []talon.State{talon.StateReady, talon.StateRunning} {
		rs, err := st.Transition(ctx, []store.Transition{{RunID: id, From: []talon.State{talon.StateBlocked, talon.StateReady}, To: to, Now: logsNow, Owner: "dead", Handle: "remote:7"}})
		if err != nil || rs[0].Err != nil {
			t.Fatal(err, rs)
		}
	}
	if err := st.AppendLog(ctx, id, 0, []byte("stored\n")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(deadDir, "far", strconv.FormatInt(id, 10)+".log")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("stored\nin the file only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := settleAll(t, e, st)
	if len(rs) != 1 || rs[0].State != talon.StateSucceeded {
		t.Fatalf("runs = %+v, want the resumed run succeeded", rs)
	}
	stored, err := st.ReadLog(ctx, id, 0, 1<<20)
	want := "stored\nin the file only\nresumed remote:7 with pw=***\n"
	if err != nil || string(stored) != want {
		t.Fatalf("stored log = %q, %v; want %q", stored, err, want)
	}
	if len(ex.secrets) != 1 || ex.secrets[0] != "hunter2" {
		t.Fatalf("the resumed run's spec has secrets %q, want the job's", ex.secrets)
	}
}
