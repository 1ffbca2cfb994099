package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// testFenceWithinBatch: a fence counts what earlier items of the same
// batch did, as if each item were applied alone, in order. Stores that
// decide a batch's fences at once must still get this right.
func testFenceWithinBatch(t *testing.T, open OpenFunc) {
	s := open(t)
	toReady := func(id int64, f store.Fence) store.Transition {
		return store.Transition{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Reason: "passed", Now: t0, Fence: &f}
	}
	type want struct {
		fence  string // the constraint of the *FenceError, "" for none
		reason string // part of its reason, with %[1]d… for the runs' ids
	}
	tests := []struct {
		name string
		// setup returns the runs, the batch and what each item should give.
		setup func(t *testing.T, job, period string) ([]int64, []store.Transition, []want)
	}{
		{
			name: "the second run of a job waits for the first",
			setup: func(t *testing.T, job, period string) ([]int64, []store.Transition, []want) {
				a, b := newRun(t, s, job, period), newRun(t, s, job, period)
				return []int64{a.ID, b.ID},
					[]store.Transition{toReady(a.ID, store.Fence{MaxRunning: 1}), toReady(b.ID, store.Fence{MaxRunning: 1})},
					[]want{{}, {fence: "max_running", reason: "1 of 1 running (runs %[1]d)"}}
			},
		},
		{
			name: "a run that ends earlier in the batch makes room",
			setup: func(t *testing.T, job, period string) ([]int64, []store.Transition, []want) {
				r := runIn(t, s, job, period, talon.StateRunning)
				b := newRun(t, s, job, period)
				end := store.Transition{RunID: r.ID, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Reason: "done", Now: t0}
				return []int64{r.ID, b.ID},
					[]store.Transition{end, toReady(b.ID, store.Fence{MaxRunning: 1})},
					[]want{{}, {}}
			},
		},
		{
			name: "a run that ends later in the batch does not",
			setup: func(t *testing.T, job, period string) ([]int64, []store.Transition, []want) {
				r := runIn(t, s, job, period, talon.StateRunning)
				b := newRun(t, s, job, period)
				end := store.Transition{RunID: r.ID, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Reason: "done", Now: t0}
				return []int64{r.ID, b.ID},
					[]store.Transition{toReady(b.ID, store.Fence{MaxRunning: 1}), end},
					[]want{{fence: "max_running", reason: "1 of 1 running (runs %[1]d)"}, {}}
			},
		},
		{
			name: "a fenced run leaves room for the next",
			setup: func(t *testing.T, job, period string) ([]int64, []store.Transition, []want) {
				a, b, c := newRun(t, s, job, period), newRun(t, s, job, period), newRun(t, s, job, period)
				return []int64{a.ID, b.ID, c.ID},
					[]store.Transition{
						toReady(a.ID, store.Fence{MaxRunning: 2}),
						toReady(b.ID, store.Fence{MaxRunning: 1}),
						toReady(c.ID, store.Fence{MaxRunning: 2}),
					},
					[]want{{}, {fence: "max_running", reason: "1 of 1 running (runs %[1]d)"}, {}}
			},
		},
		{
			name: "once per period: the first of the period wins",
			setup: func(t *testing.T, job, period string) ([]int64, []store.Transition, []want) {
				a, b := newRun(t, s, job, period), newRun(t, s, job, period)
				return []int64{a.ID, b.ID},
					[]store.Transition{toReady(a.ID, store.Fence{OncePerPeriod: true}), toReady(b.ID, store.Fence{OncePerPeriod: true})},
					[]want{{}, {fence: "once_per_period", reason: "run %[1]d is ready in"}}
			},
		},
		{
			name: "once per period: a success earlier in the batch is named first",
			setup: func(t *testing.T, job, period string) ([]int64, []store.Transition, []want) {
				r := runIn(t, s, job, period, talon.StateRunning)
				a := runIn(t, s, job, period, talon.StateReady)
				b := newRun(t, s, job, period)
				end := store.Transition{RunID: a.ID, From: []talon.State{talon.StateReady}, To: talon.StateRunning, Reason: "go", Now: t0}
				done := store.Transition{RunID: a.ID, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Reason: "done", Now: t0}
				return []int64{r.ID, a.ID, b.ID},
					[]store.Transition{end, done, toReady(b.ID, store.Fence{OncePerPeriod: true, MaxRunning: 5})},
					[]want{{}, {}, {fence: "once_per_period", reason: "run %[2]d already succeeded in"}}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, period := fmt.Sprintf("fwb%d", i), "daily/2026-11-26"
			ids, batch, wants := tt.setup(t, job, period)
			res, err := s.Transition(t.Context(), batch)
			if err != nil {
				t.Fatal(err)
			}
			args := make([]any, len(ids))
			for k, id := range ids {
				args[k] = id
			}
			for k, w := range wants {
				switch {
				case w.fence == "" && res[k].Err != nil:
					t.Errorf("item %d: %v, want no error", k, res[k].Err)
				case w.fence != "":
					fenceErr(t, res[k].Err, w.fence, fmt.Sprintf(w.reason, args...))
				case res[k].Run.State != batch[k].To:
					t.Errorf("item %d: run is %s, want %s", k, res[k].Run.State, batch[k].To)
				}
			}
		})
	}
}

// testBatchDecisions: the same run re-decided twice in one batch keeps
// the second decisions and records both events.
func testBatchDecisions(t *testing.T, open OpenFunc) {
	s := open(t)
	r := newRun(t, s, "j", "daily/2026-11-26")
	first := []talon.Decision{{Constraint: "after", Action: talon.ActionBlock, Reason: "waiting for a"}}
	second := []talon.Decision{
		{Constraint: "after", Action: talon.ActionPass, Reason: "a succeeded"},
		{Constraint: "not_before", Action: talon.ActionBlock, Reason: "not before 08:00"},
	}
	res, err := s.Transition(t.Context(), []store.Transition{
		{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked, Reason: "waiting for a", Decisions: first, Now: t0},
		{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked, Reason: "not before 08:00", Decisions: second, Now: t0},
		{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked, Reason: "not before 08:00", Quiet: true, Now: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, rs := range res {
		if rs.Err != nil || rs.Run.State != talon.StateBlocked {
			t.Errorf("item %d: %s, %v; want blocked", i, rs.Run.State, rs.Err)
		}
	}
	if res[0].Run.Reason != "waiting for a" || res[1].Run.Reason != "not before 08:00" {
		t.Errorf("reasons = %q, %q; each item returns the run as it left it", res[0].Run.Reason, res[1].Run.Reason)
	}
	ds, err := s.Decisions(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(second) || ds[0].Reason != second[0].Reason || ds[1].Reason != second[1].Reason {
		t.Errorf("decisions = %+v, want %+v", ds, second)
	}
	evs, err := s.Events(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs {
		reasons = append(reasons, e.Reason)
	}
	if want := []string{"created", "waiting for a", "not before 08:00"}; fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("events = %q, want %q", reasons, want)
	}
}

// testCreateMixed: one batch mixing new runs, runs that exist, a key
// repeated in the batch and external runs without a key returns one
// result per item, in order.
func testCreateMixed(t *testing.T, open OpenFunc) {
	s := open(t)
	p := "daily/2026-11-26"
	old := create(t, s,
		store.CreateRun{Job: "m", Period: p, Trigger: "cron", FireTime: t0, Reason: "old fire", Now: t0},
		store.CreateRun{Job: "m", Period: p, Trigger: "api", Key: "old-key", Reason: "old key", Now: t0},
	)
	in := []store.CreateRun{
		{Job: "m", Period: p, Trigger: "api", Reason: "external 1", Now: t0},
		{Job: "m", Period: p, Trigger: "cron", FireTime: t0, Reason: "fire again", Now: t0},
		{Job: "m", Period: p, Trigger: "api", Key: "new-key", Reason: "new key", Params: map[string]string{"a": "1"}, Now: t0},
		{Job: "m", Period: p, Trigger: "api", Key: "old-key", Reason: "old key again", Now: t0},
		{Job: "m", Period: p, Trigger: "api", Reason: "external 2", Now: t0},
		{Job: "m", Period: p, Trigger: "api", Key: "new-key", Reason: "new key again", Now: t0},
		{Job: "a", Period: p, Trigger: "cron", FireTime: t0, Reason: "other job", Now: t0},
	}
	out := create(t, s, in...)
	want := []struct {
		created bool
		reason  string // of the run returned
		id      int64  // when it is a known run
	}{
		{created: true, reason: "external 1"},
		{reason: "old fire", id: old[0].Run.ID},
		{created: true, reason: "new key"},
		{reason: "old key", id: old[1].Run.ID},
		{created: true, reason: "external 2"},
		{reason: "new key", id: out[2].Run.ID},
		{created: true, reason: "other job"},
	}
	for i, w := range want {
		got := out[i]
		if got.Created != w.created || got.Run.Reason != w.reason || w.id != 0 && got.Run.ID != w.id {
			t.Errorf("item %d = (run %d %q, created %v), want (run %d %q, created %v)",
				i, got.Run.ID, got.Run.Reason, got.Created, w.id, w.reason, w.created)
		}
	}
	if out[0].Run.ID == out[4].Run.ID {
		t.Errorf("two external runs without a key share run %d", out[0].Run.ID)
	}
	if out[2].Run.Params["a"] != "1" {
		t.Errorf("params = %v, want a=1", out[2].Run.Params)
	}
	for _, i := range []int{0, 2, 4, 6} {
		evs, err := s.Events(t.Context(), out[i].Run.ID)
		if err != nil || len(evs) != 1 || evs[0].To != talon.StateBlocked {
			t.Errorf("item %d: events = %v, %v; want one creation event", i, evs, err)
		}
	}
}

// testFenceBatchRace: two schedulers each move a batch of runs of one
// job to ready at once; the limit holds over both batches.
func testFenceBatchRace(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	const (
		perBatch = 6
		limit    = 3
	)
	var ps []store.CreateRun
	for i := range 2 * perBatch {
		ps = append(ps, store.CreateRun{Job: "j", Period: "daily/2026-11-26", Trigger: "cron", FireTime: t0.Add(time.Duration(i) * time.Minute), Now: t0})
	}
	runs := create(t, handles[0], ps...)
	moved := make([]int, 2)
	errs := make([]error, 2)
	parallel(t, 2, func(w int) {
		var ts []store.Transition
		for _, c := range runs[w*perBatch : (w+1)*perBatch] {
			ts = append(ts, store.Transition{RunID: c.Run.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady,
				Now: t0, Fence: &store.Fence{MaxRunning: limit}})
		}
		res, err := handles[w].Transition(t.Context(), ts)
		if err != nil {
			errs[w] = err
			return
		}
		for _, rs := range res {
			var fe *store.FenceError
			switch {
			case rs.Err == nil:
				moved[w]++
			case !errors.As(rs.Err, &fe):
				errs[w] = rs.Err
			}
		}
	})
	for w, err := range errs {
		if err != nil {
			t.Fatalf("scheduler %d: %v", w, err)
		}
	}
	if got := moved[0] + moved[1]; got != limit {
		t.Errorf("%d + %d runs moved to ready, want %d in all", moved[0], moved[1], limit)
	}
	counts, err := handles[1].ActiveCounts(t.Context(), []string{"j"})
	if err != nil {
		t.Fatal(err)
	}
	if got := counts["j"]; got != limit {
		t.Errorf("%d runs active, want %d", got, limit)
	}
}
