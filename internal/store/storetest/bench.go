package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/talonhq/talon"
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
