package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

func testTransitions(t *testing.T, open OpenFunc) {
	s := open(t)
	type tcase struct {
		from, to talon.State
		legal    bool
	}
	var tests []tcase
	for _, from := range talon.States {
		for _, to := range talon.States {
			tests = append(tests, tcase{from: from, to: to, legal: talon.CanTransition(from, to)})
		}
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s→%s", tt.from, tt.to), func(t *testing.T) {
			r := runIn(t, s, "j", "daily/2026-11-26", tt.from)
			res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{tt.from}, To: tt.to, Reason: "test", Now: t0})
			if tt.legal {
				if res.Err != nil {
					t.Fatalf("legal transition: %v", res.Err)
				}
				if res.Run.State != tt.to || res.Run.ID != r.ID || res.Run.Reason != "test" {
					t.Fatalf("result run = %d %s %q, want %d %s \"test\"", res.Run.ID, res.Run.State, res.Run.Reason, r.ID, tt.to)
				}
			} else {
				if !errors.Is(res.Err, store.ErrConflict) {
					t.Fatalf("illegal transition: err = %v, want ErrConflict", res.Err)
				}
				if got := getRun(t, s, r.ID); got.State != tt.from {
					t.Fatalf("run moved to %s by an illegal transition", got.State)
				}
			}
		})
	}
}

func testTransitionStamps(t *testing.T, open OpenFunc) {
	s := open(t)
	r := newRun(t, s, "j", "daily/2026-11-26")
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	recheck := t0.Add(time.Hour)
	steps := []struct {
		name string
		tr   store.Transition
		want func(*talon.Run)
	}{
		{
			name: "blocked with recheck",
			tr:   store.Transition{From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked, Reason: "not before 08:30", Now: t1, RecheckAt: recheck},
			want: func(w *talon.Run) { w.Reason = "not before 08:30"; w.RecheckAt = stored(recheck) },
		},
		{
			name: "ready clears recheck, sets owner",
			tr:   store.Transition{From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Reason: "all passed", Now: t1, Owner: "sched-1"},
			want: func(w *talon.Run) {
				w.State, w.Reason, w.RecheckAt, w.Owner = talon.StateReady, "all passed", time.Time{}, "sched-1"
			},
		},
		{
			name: "running stamps started, handle and executor",
			tr: store.Transition{From: []talon.State{talon.StateReady}, To: talon.StateRunning, Reason: "started",
				Now: t2, Handle: "pid 42", Executor: "local"},
			want: func(w *talon.Run) {
				w.State, w.Reason, w.Handle, w.Executor, w.Started = talon.StateRunning, "started", "pid 42", "local", ptr(stored(t2))
			},
		},
		{
			name: "running again re-attaches: new owner, same start",
			tr: store.Transition{From: []talon.State{talon.StateRunning}, To: talon.StateRunning, Reason: "re-attached",
				Now: t3, Owner: "sched-2"},
			want: func(w *talon.Run) { w.Reason, w.Owner = "re-attached", "sched-2" },
		},
		{
			name: "succeeded stamps finished, keeps owner and handle",
			tr:   store.Transition{From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Reason: "exit 0", Now: t3},
			want: func(w *talon.Run) { w.State, w.Reason, w.Finished = talon.StateSucceeded, "exit 0", ptr(stored(t3)) },
		},
	}
	want := r
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.tr.RunID = r.ID
			res := transition(t, s, st.tr)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			st.want(&want)
			checkRun(t, "Transition", res.Run, want)
			checkRun(t, "GetRun", getRun(t, s, r.ID), want)
		})
	}
}

func testTransitionConflict(t *testing.T, open OpenFunc) {
	s := open(t)
	tests := []struct {
		name  string
		state talon.State
		from  []talon.State
		to    talon.State
	}{
		{name: "not in from", state: talon.StateBlocked, from: []talon.State{talon.StateReady}, to: talon.StateRunning},
		{name: "empty from", state: talon.StateBlocked, from: nil, to: talon.StateReady},
		{name: "finished run", state: talon.StateSucceeded, from: []talon.State{talon.StateRunning}, to: talon.StateFailed},
		{name: "in from but illegal", state: talon.StateBlocked, from: []talon.State{talon.StateBlocked}, to: talon.StateRunning},
		{name: "unknown target", state: talon.StateBlocked, from: []talon.State{talon.StateBlocked}, to: "paused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runIn(t, s, "j", "daily/2026-11-26", tt.state)
			before, err := s.Events(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			res := transition(t, s, store.Transition{RunID: r.ID, From: tt.from, To: tt.to, Reason: "x", Now: t0})
			if !errors.Is(res.Err, store.ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", res.Err)
			}
			got := getRun(t, s, r.ID)
			checkRun(t, "after conflict", got, r)
			after, err := s.Events(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("a conflict wrote %d events", len(after)-len(before))
			}
		})
	}
}

func testTransitionRace(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	tests := []struct {
		name     string
		from, to talon.State
	}{
		{name: "blocked to ready", from: talon.StateBlocked, to: talon.StateReady},
		{name: "ready to running", from: talon.StateReady, to: talon.StateRunning},
		{name: "running to failed", from: talon.StateRunning, to: talon.StateFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runIn(t, handles[0], "j", "daily/2026-11-26", tt.from)
			const n = 8
			var won, conflicts atomic.Int32
			errs := make(chan error, n)
			parallel(t, n, func(i int) {
				res, err := handles[i%2].Transition(t.Context(), []store.Transition{{
					RunID: r.ID, From: []talon.State{tt.from}, To: tt.to, Reason: fmt.Sprintf("worker %d", i), Now: t0,
				}})
				switch {
				case err != nil:
					errs <- err
				case res[0].Err == nil:
					won.Add(1)
				case errors.Is(res[0].Err, store.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- res[0].Err
				}
			})
			close(errs)
			for err := range errs {
				t.Errorf("unexpected error: %v", err)
			}
			if won.Load() != 1 || conflicts.Load() != n-1 {
				t.Fatalf("%d won, %d conflicts; want 1 and %d", won.Load(), conflicts.Load(), n-1)
			}
			evs, err := handles[1].Events(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if last := evs[len(evs)-1]; last.From != tt.from || last.To != tt.to {
				t.Errorf("last event %s → %s, want %s → %s", last.From, last.To, tt.from, tt.to)
			}
			if got := getRun(t, handles[1], r.ID); got.State != tt.to {
				t.Errorf("run is %s, want %s", got.State, tt.to)
			}
		})
	}
}

func testTransitionBatch(t *testing.T, open OpenFunc) {
	s := open(t)
	a := newRun(t, s, "j", "daily/2026-11-26")
	b := runIn(t, s, "j", "daily/2026-11-26", talon.StateRunning)
	c := newRun(t, s, "j", "daily/2026-11-26")
	res, err := s.Transition(t.Context(), []store.Transition{
		{RunID: a.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Reason: "ok", Now: t0},
		{RunID: 999999, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0},
		{RunID: b.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0},
		{RunID: c.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateSkipped, Reason: "cancelled by ops", Now: t0},
		// The same run twice: the second item sees the first's result.
		{RunID: a.ID, From: []talon.State{talon.StateReady}, To: talon.StateRunning, Reason: "started", Now: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		err   error
		state talon.State
	}{
		{nil, talon.StateReady},
		{store.ErrNotFound, ""},
		{store.ErrConflict, ""},
		{nil, talon.StateSkipped},
		{nil, talon.StateRunning},
	}
	for i, w := range want {
		if w.err == nil && res[i].Err != nil || w.err != nil && !errors.Is(res[i].Err, w.err) {
			t.Errorf("item %d: err = %v, want %v", i, res[i].Err, w.err)
		}
		if w.err == nil && res[i].Run.State != w.state {
			t.Errorf("item %d: state = %s, want %s", i, res[i].Run.State, w.state)
		}
	}
	if got := getRun(t, s, a.ID).State; got != talon.StateRunning {
		t.Errorf("run a is %s, want running", got)
	}
	if got := getRun(t, s, b.ID).State; got != talon.StateRunning {
		t.Errorf("run b is %s, want running (unchanged)", got)
	}
}

func testNotFound(t *testing.T, open OpenFunc) {
	s := open(t)
	const id = 424242
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"GetRun", func() error { _, err := s.GetRun(ctx, id); return err }},
		{"Transition", func() error {
			res, err := s.Transition(ctx, []store.Transition{{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateReady}})
			if err != nil {
				return fmt.Errorf("batch error %w", err)
			}
			return res[0].Err
		}},
		{"Decisions", func() error { _, err := s.Decisions(ctx, id); return err }},
		{"Events", func() error { _, err := s.Events(ctx, id); return err }},
		{"SetProgress", func() error { return s.SetProgress(ctx, id, talon.Progress{Message: "x"}) }},
		{"AddArtifact", func() error { _, err := s.AddArtifact(ctx, id, "file:///x", "", t0); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

func testEvents(t *testing.T, open OpenFunc) {
	s := open(t)
	r := runIn(t, s, "j", "daily/2026-11-26", talon.StateSucceeded)
	evs, err := s.Events(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range evs {
		got = append(got, fmt.Sprintf("%s→%s %s", e.From, e.To, e.Reason))
		if e.RunID != r.ID || !e.Time.Equal(stored(t0)) || e.Time.Location() != time.UTC {
			t.Errorf("event %d = %+v", i, e)
		}
		if i > 0 && e.ID <= evs[i-1].ID {
			t.Errorf("events not oldest first: %d after %d", e.ID, evs[i-1].ID)
		}
	}
	want := []string{"→blocked created", "blocked→ready to ready", "ready→running to running", "running→succeeded to succeeded"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func testQuiet(t *testing.T, open OpenFunc) {
	s := open(t)
	tests := []struct {
		name      string
		reason    string
		quiet     bool
		wantEvent bool
	}{
		{name: "quiet, same reason", reason: "created", quiet: true, wantEvent: false},
		{name: "quiet, new reason", reason: "waiting for a", quiet: true, wantEvent: true},
		{name: "quiet, same new reason", reason: "waiting for a", quiet: true, wantEvent: false},
		{name: "not quiet, same reason", reason: "waiting for a", quiet: false, wantEvent: true},
	}
	r := newRun(t, s, "j", "daily/2026-11-26") // reason "created"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := s.Events(t.Context(), r.ID)
			res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked,
				Reason: tt.reason, Quiet: tt.quiet, Now: t0,
				Decisions: []talon.Decision{{Constraint: "after", Action: talon.ActionBlock, Reason: tt.reason}}})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			after, err := s.Events(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(after) - len(before); got != map[bool]int{false: 0, true: 1}[tt.wantEvent] {
				t.Errorf("%d events written, want event: %v", got, tt.wantEvent)
			}
			ds, err := s.Decisions(t.Context(), r.ID)
			if err != nil || len(ds) != 1 || ds[0].Reason != tt.reason {
				t.Errorf("decisions = %v, %v; a quiet re-decision still stores its decisions", ds, err)
			}
		})
	}
}

func testDecisions(t *testing.T, open OpenFunc) {
	s := open(t)
	r := newRun(t, s, "j", "daily/2026-11-26")
	recheck := t0.Add(30 * time.Minute)
	first := []talon.Decision{
		{Constraint: "not_before", Action: talon.ActionBlock, Reason: "not before 08:00", RecheckAt: recheck},
		{Constraint: "after", Action: talon.ActionPass, Reason: "a succeeded"},
	}
	second := []talon.Decision{{Constraint: "max_running", Action: talon.ActionBlock, Reason: "1 of 1 running"}}
	tests := []struct {
		name string
		give []talon.Decision
		want []talon.Decision
	}{
		{name: "stored in order", give: first, want: []talon.Decision{
			{Constraint: "not_before", Action: talon.ActionBlock, Reason: "not before 08:00", RecheckAt: stored(recheck)},
			{Constraint: "after", Action: talon.ActionPass, Reason: "a succeeded"},
		}},
		{name: "nil keeps them", give: nil, want: []talon.Decision{
			{Constraint: "not_before", Action: talon.ActionBlock, Reason: "not before 08:00", RecheckAt: stored(recheck)},
			{Constraint: "after", Action: talon.ActionPass, Reason: "a succeeded"},
		}},
		{name: "replaced", give: second, want: second},
		{name: "empty clears", give: []talon.Decision{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked,
				Reason: "re-decided", Decisions: tt.give, Now: t0})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			got, err := s.Decisions(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("decisions = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Constraint != tt.want[i].Constraint || got[i].Action != tt.want[i].Action ||
					got[i].Reason != tt.want[i].Reason || !got[i].RecheckAt.Equal(tt.want[i].RecheckAt) {
					t.Errorf("decision %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func fenceErr(t *testing.T, err error, constraint, reasonPart string) {
	t.Helper()
	var fe *store.FenceError
	if !errors.As(err, &fe) || !errors.Is(err, store.ErrFenced) {
		t.Fatalf("err = %v, want a *store.FenceError", err)
	}
	if fe.Constraint != constraint || !strings.Contains(fe.Reason, reasonPart) {
		t.Fatalf("fence = %s: %q, want %s with %q", fe.Constraint, fe.Reason, constraint, reasonPart)
	}
}

func testFenceMaxRunning(t *testing.T, open OpenFunc) {
	s := open(t)
	p := "daily/2026-11-26"
	r1 := runIn(t, s, "j", p, talon.StateRunning)
	r2 := runIn(t, s, "j", "daily/2026-11-25", talon.StateReady)
	runIn(t, s, "other", p, talon.StateRunning) // other jobs don't count
	runIn(t, s, "j", p, talon.StateSucceeded)   // finished runs don't count
	r := newRun(t, s, "j", p)
	toReady := func(max int) store.Result {
		return transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady,
			Reason: "all passed", Now: t0, Fence: &store.Fence{MaxRunning: max}})
	}
	res := toReady(2)
	fenceErr(t, res.Err, "max_running", fmt.Sprintf("2 of 2 running (runs %d, %d)", r1.ID, r2.ID))
	if got := getRun(t, s, r.ID); got.State != talon.StateBlocked || got.Reason != "created" {
		t.Fatalf("fenced run changed: %s %q", got.State, got.Reason)
	}
	if evs, _ := s.Events(t.Context(), r.ID); len(evs) != 1 {
		t.Errorf("fenced transition wrote %d events", len(evs)-1)
	}
	// Without the fence the same move is allowed: the limit is the caller's.
	if res := toReady(3); res.Err != nil {
		t.Fatalf("MaxRunning 3 with 2 active: %v", res.Err)
	}
}

func testFenceMaxRunningRace(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	const (
		n     = 10
		limit = 2
	)
	var ps []store.CreateRun
	for i := range n {
		ps = append(ps, store.CreateRun{Job: "j", Period: "daily/2026-11-26", Trigger: "cron", FireTime: t0.Add(time.Duration(i) * time.Minute), Now: t0})
	}
	runs := create(t, handles[0], ps...)
	var won, fenced atomic.Int32
	errs := make(chan error, n)
	parallel(t, n, func(i int) {
		res, err := handles[i%2].Transition(t.Context(), []store.Transition{{
			RunID: runs[i].Run.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0,
			Fence: &store.Fence{MaxRunning: limit},
		}})
		var fe *store.FenceError
		switch {
		case err != nil:
			errs <- err
		case res[0].Err == nil:
			won.Add(1)
		case errors.As(res[0].Err, &fe) && fe.Constraint == "max_running":
			fenced.Add(1)
		default:
			errs <- res[0].Err
		}
	})
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if won.Load() != limit || fenced.Load() != n-limit {
		t.Fatalf("%d moved to ready, %d fenced; want %d and %d", won.Load(), fenced.Load(), limit, n-limit)
	}
	counts, err := handles[1].ActiveCounts(t.Context(), []string{"j"})
	if err != nil {
		t.Fatal(err)
	}
	if got := counts["j"]; got != limit {
		t.Errorf("%d runs active, want %d", got, limit)
	}
}

func testFenceOncePerPeriod(t *testing.T, open OpenFunc) {
	s := open(t)
	tests := []struct {
		name   string
		other  talon.State // another run of the job in the same period
		fenced string      // part of the reason, "" if allowed
	}{
		{name: "succeeded", other: talon.StateSucceeded, fenced: "already succeeded in"},
		{name: "running", other: talon.StateRunning, fenced: "is running in"},
		{name: "ready", other: talon.StateReady, fenced: "is ready in"},
		{name: "failed", other: talon.StateFailed},
		{name: "skipped", other: talon.StateSkipped},
		{name: "blocked", other: talon.StateBlocked},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			period := fmt.Sprintf("daily/2026-11-%02d", i+1)
			other := runIn(t, s, "j", period, tt.other)
			runIn(t, s, "k", period, talon.StateSucceeded) // another job doesn't count
			r := newRun(t, s, "j", period)
			res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady,
				Now: t0, Fence: &store.Fence{OncePerPeriod: true}})
			if tt.fenced == "" {
				if res.Err != nil {
					t.Fatalf("err = %v, want none", res.Err)
				}
				return
			}
			fenceErr(t, res.Err, "once_per_period", fmt.Sprintf("run %d %s %s", other.ID, tt.fenced, period))
			if got := getRun(t, s, r.ID); got.State != talon.StateBlocked {
				t.Fatalf("fenced run moved to %s", got.State)
			}
		})
	}
}

// testEventsAfter: the feed of every run's events after an id, oldest
// first, bounded, and the newest id.
func testEventsAfter(t *testing.T, open OpenFunc) {
	s := open(t)
	last, err := s.LastEventID(t.Context())
	if err != nil || last != 0 {
		t.Fatalf("LastEventID of an empty store = %d, %v; want 0", last, err)
	}
	a := runIn(t, s, "a", "daily/2026-11-26", talon.StateSucceeded)
	b := newRun(t, s, "b", "daily/2026-11-26")
	all, err := s.EventsAfter(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	// a: created, ready, running, succeeded; b: created.
	if len(all) != 5 {
		t.Fatalf("%d events, want 5: %+v", len(all), all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Errorf("events out of order: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	if all[0].RunID != a.ID || all[0].From != "" || all[3].To != talon.StateSucceeded || all[4].RunID != b.ID {
		t.Errorf("events = %+v", all)
	}
	last, err = s.LastEventID(t.Context())
	if err != nil || last != all[4].ID {
		t.Errorf("LastEventID = %d, %v; want %d", last, err, all[4].ID)
	}
	page, err := s.EventsAfter(t.Context(), all[1].ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
		t.Errorf("EventsAfter(%d, 2) = %+v, want events %d and %d", all[1].ID, page, all[2].ID, all[3].ID)
	}
	if none, err := s.EventsAfter(t.Context(), last, 10); err != nil || len(none) != 0 {
		t.Errorf("EventsAfter(last) = %+v, %v; want none", none, err)
	}
}

// A transition's Then are created in its transaction when it applies —
// also when an earlier attempt applied it — and never when the run did
// not end up where the transition takes it; a key already held returns
// its holder, a paused job's run is recorded skipped, and the counters
// follow.
func testThen(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	const period = "daily/2026-11-26"
	if _, _, err := s.PauseJob(ctx, talon.Pause{Job: "paused", By: "alice", Since: t0}); err != nil {
		t.Fatal(err)
	}
	end := t0.Add(time.Minute)
	follow := func(job string, up int64) store.CreateRun {
		return store.CreateRun{Job: job, Period: period, Trigger: "after-up", FireTime: end, Reason: fmt.Sprintf("fired: run %d succeeded", up),
			Now: end, Params: map[string]string{"from": "up"}, IfPaused: store.PauseSkip}
	}
	// A key held before: its holder comes back.
	held := create(t, s, store.CreateRun{Job: "held", Period: period, Trigger: "after-up", FireTime: end, Reason: "held", Now: t0})[0].Run

	for _, batch := range []int{1, 5} { // alone, and among others (the lock path too)
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			var ts []store.Transition
			var ups []talon.Run
			for i := range batch {
				up := runIn(t, s, fmt.Sprintf("up%d-%d", batch, i), period, talon.StateRunning)
				ups = append(ups, up)
				tr := store.Transition{RunID: up.ID, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Reason: "exit 0", Now: end,
					Then: []store.CreateRun{follow(fmt.Sprintf("down%d-%d", batch, i), up.ID), follow("paused", up.ID), follow("held", up.ID)}}
				if i == 1 {
					// A quiet re-decision of another run puts the batch on
					// the path that locks.
					tr2 := newRun(t, s, "other", period)
					ts = append(ts, store.Transition{RunID: tr2.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked, Quiet: true, Now: end})
				}
				ts = append(ts, tr)
			}
			// One more that does not apply: its run is not running.
			notRunning := newRun(t, s, fmt.Sprintf("blocked%d", batch), period)
			ts = append(ts, store.Transition{RunID: notRunning.ID, From: []talon.State{talon.StateRunning}, To: talon.StateFailed, Now: end,
				Then: []store.CreateRun{{Job: "never", Period: period, Key: store.RetryKey(notRunning.ID), RetryOf: notRunning.ID, Attempt: 2, Now: end}}})
			res, err := s.Transition(ctx, ts)
			if err != nil {
				t.Fatal(err)
			}
			var downIDs []int64
			for i, tr := range ts {
				if tr.Then == nil {
					continue
				}
				r := res[i]
				if tr.RunID == notRunning.ID {
					if r.Err == nil || len(r.Then) != 1 || r.Then[0].Run.ID != 0 || r.Then[0].Created {
						t.Fatalf("transition refused: %+v; want an error and nothing created", r)
					}
					continue
				}
				if r.Err != nil || len(r.Then) != 3 {
					t.Fatalf("run %d: %+v; want it succeeded and 3 results", tr.RunID, r)
				}
				down, paused, h := r.Then[0], r.Then[1], r.Then[2]
				if !down.Created || down.Run.State != talon.StateBlocked || down.Run.Params["from"] != "up" || !down.Run.FireTime.Equal(stored(end)) {
					t.Errorf("run %d: downstream %+v; want it created blocked", tr.RunID, down)
				}
				downIDs = append(downIDs, down.Run.ID)
				if paused.Run.State != talon.StateSkipped || !strings.Contains(paused.Run.Reason, "skipped: job paused by alice") {
					t.Errorf("run %d: paused job's run %+v; want it skipped naming the pause", tr.RunID, paused.Run)
				}
				if h.Created || h.Run.ID != held.ID {
					t.Errorf("run %d: held key: %+v; want run %d, not created", tr.RunID, h, held.ID)
				}
			}
			// Each end reports its period's counters as it left them.
			for i, tr := range ts {
				if tr.Then == nil || tr.RunID == notRunning.ID {
					continue
				}
				k := store.JobPeriod{Job: res[i].Run.Job, Period: period}
				sums, err := s.Summaries(ctx, []store.JobPeriod{k})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(res[i].Counts, sums[k]) {
					t.Errorf("run %d: Counts %v, Summaries %v", tr.RunID, res[i].Counts, sums[k])
				}
			}
			if runs, err := s.ListRuns(ctx, store.RunFilter{Job: "never"}); err != nil || len(runs) != 0 {
				t.Fatalf("runs of never = %d, %v; want none", len(runs), err)
			}
			// The same ends again, as after an unanswered commit: they are
			// refused, and what follows them is the same runs, not new ones.
			var again []store.Transition
			for _, tr := range ts {
				if tr.Then != nil && tr.RunID != notRunning.ID {
					again = append(again, tr)
				}
			}
			res2, err := s.Transition(ctx, again)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res2 {
				if !errors.Is(r.Err, store.ErrConflict) || len(r.Then) != 3 || r.Then[0].Created || r.Then[0].Run.ID != downIDs[i] {
					t.Errorf("again, run %d: %+v; want a conflict and the same downstream run %d", again[i].RunID, r, downIDs[i])
				}
			}
			for _, up := range ups {
				if got := getRun(t, s, up.ID); got.State != talon.StateSucceeded {
					t.Errorf("run %d is %s", up.ID, got.State)
				}
			}
		})
	}
	// The counters follow the runs created with the ends.
	for _, job := range []string{"down1-0", "paused", "held"} {
		k := store.JobPeriod{Job: job, Period: period}
		got, err := s.Summaries(ctx, []store.JobPeriod{k})
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.ListRuns(ctx, store.RunFilter{Job: job, Period: period})
		if err != nil {
			t.Fatal(err)
		}
		want := store.Summary{}
		for _, r := range all {
			want[r.State]++
		}
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("Summaries(%s) = %v, the runs say %v", job, got[k], want)
		}
	}
	// A failure and its retry, of the same job and period: the counters
	// reported count both.
	failing := runIn(t, s, "flaky", period, talon.StateRunning)
	res, err := s.Transition(ctx, []store.Transition{{RunID: failing.ID, From: []talon.State{talon.StateRunning}, To: talon.StateFailed, Now: end,
		Then: []store.CreateRun{{Job: "flaky", Period: period, Key: store.RetryKey(failing.ID), RetryOf: failing.ID, Attempt: 2, Now: end}}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Summary{talon.StateFailed: 1, talon.StateBlocked: 1}); res[0].Err != nil || !reflect.DeepEqual(res[0].Counts, want) {
		t.Errorf("failed with its retry: %+v; want Counts %v", res[0], want)
	}
	// Runs to create need a unique key, and an end to follow.
	up := runIn(t, s, "up", period, talon.StateRunning)
	for _, bad := range []store.Transition{
		{RunID: up.ID, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Now: end,
			Then: []store.CreateRun{{Job: "x", Period: period, Now: end}}},
		{RunID: up.ID, From: []talon.State{talon.StateReady}, To: talon.StateRunning, Now: end,
			Then: []store.CreateRun{follow("x", up.ID)}},
	} {
		if _, err := s.Transition(ctx, []store.Transition{bad}); err == nil {
			t.Errorf("Transition accepted %+v", bad)
		}
	}
	if got := getRun(t, s, up.ID); got.State != talon.StateRunning {
		t.Errorf("a refused batch moved run %d to %s", up.ID, got.State)
	}
}
