package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/store"
)

// BenchCreateRuns measures one CreateRuns of n new runs, the engine's
// work at a period rollover; open returns a fresh store for each call.
func BenchCreateRuns(b *testing.B, open func(b *testing.B) store.Store, n int) {
	s := open(b)
	period := 0
	b.ReportAllocs()
	for b.Loop() {
		period++
		ps := make([]store.CreateRun, n)
		for i := range ps {
			ps[i] = store.CreateRun{Job: fmt.Sprintf("job%05d", i), Period: fmt.Sprintf("oneshot/p%d", period),
				Trigger: "cron", FireTime: t0, Reason: "fired", Now: t0, Params: map[string]string{"i": fmt.Sprint(i)}}
		}
		out, err := s.CreateRuns(b.Context(), ps)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) != n || !out[n-1].Created {
			b.Fatalf("created %d runs", len(out))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/run")
}

// BenchTransition measures batches of n blocked → blocked re-decisions
// with decisions, the engine's work at each poll.
func BenchTransition(b *testing.B, open func(b *testing.B) store.Store, n int) {
	s := open(b)
	ps := make([]store.CreateRun, n)
	for i := range ps {
		ps[i] = store.CreateRun{Job: fmt.Sprintf("job%05d", i), Period: "daily/2026-11-26", Trigger: "cron", FireTime: t0, Now: t0}
	}
	out, err := s.CreateRuns(b.Context(), ps)
	if err != nil {
		b.Fatal(err)
	}
	ts := make([]store.Transition, n)
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		round++
		for i, c := range out {
			reason := fmt.Sprintf("waiting for upstream (round %d)", round)
			ts[i] = store.Transition{RunID: c.Run.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked,
				Reason: reason, Now: t0.Add(time.Duration(round) * time.Second), Quiet: true,
				Decisions: []talon.Decision{{Constraint: "after", Action: talon.ActionBlock, Reason: reason}}}
		}
		res, err := s.Transition(b.Context(), ts)
		if err != nil {
			b.Fatal(err)
		}
		if res[n-1].Err != nil {
			b.Fatal(res[n-1].Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/transition")
}

// BenchLogWriter measures a chatty run's output through the executor's
// LogWriter into the store: 100,000 lines of 60 bytes written as fast as
// a loop can, then Close. It reports MB/s of output stored and the store
// writes (statements) it took per 1,000 lines.
func BenchLogWriter(b *testing.B, open func(b *testing.B) store.Store) {
	s := open(b)
	const lines = 100_000
	line := []byte(strings.Repeat("x", 59) + "\n")
	var writes int64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := create(b, s, store.CreateRun{Job: "chatty", Period: fmt.Sprintf("oneshot/p%d", i), Trigger: "api", Now: t0})[0].Run
		c := newCounting(s)
		w := executor.NewLogWriter(c, r.ID, 0, executor.LogOptions{Limit: 1 << 30})
		for range lines {
			w.Write(line)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if n, err := s.LogSize(b.Context(), r.ID); err != nil || n != int64(lines*len(line)) {
			b.Fatalf("stored %d bytes, %v; want %d", n, err, lines*len(line))
		}
		writes += c.writes.Load()
	}
	b.ReportMetric(float64(b.N*lines*len(line))/1e6/b.Elapsed().Seconds(), "MB/s")
	b.ReportMetric(float64(writes)/float64(b.N)/(lines/1000), "writes/1000-lines")
}

// BenchLifecycle measures one run's whole life in the store, one run at
// a time, as a run triggered over the API lives it: created (with its
// audit entry, refused if its job is paused), let in and started (one
// batch: blocked → ready with its decisions, ready → running), and
// ended. It reports µs/run: the store's share of a one-at-a-time
// trigger's cost, each write a round trip and a commit.
func BenchLifecycle(b *testing.B, open func(b *testing.B) store.Store) {
	s := open(b)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		now := t0.Add(time.Duration(i) * time.Millisecond)
		out, err := s.CreateRuns(ctx, []store.CreateRun{{
			Job: "noop", Period: "daily/2026-11-26", Trigger: talon.TriggerAPI, Executor: "inprocess",
			Reason: "triggered by request", Now: now, IfPaused: store.PauseRefuse,
			Audit: &talon.AuditEntry{Time: now, Actor: "bench", Action: "trigger", Object: "job noop", Remote: "127.0.0.1", Outcome: "ok"},
		}})
		if err != nil || !out[0].Created {
			b.Fatalf("create: %v", err)
		}
		id := out[0].Run.ID
		res, err := s.Transition(ctx, []store.Transition{
			{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Reason: "all constraints passed",
				Now: now, Owner: "bench", Executor: "inprocess", Decisions: []talon.Decision{}},
			{RunID: id, From: []talon.State{talon.StateReady}, To: talon.StateRunning, Reason: "started on inprocess",
				Now: now, Owner: "bench", Handle: "inprocess"},
		})
		if err == nil {
			err = errors.Join(res[0].Err, res[1].Err)
		}
		if err != nil {
			b.Fatalf("start: %v", err)
		}
		res, err = s.Transition(ctx, []store.Transition{
			{RunID: id, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Reason: "exit 0", Now: now},
		})
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			b.Fatalf("end: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/run")
}
