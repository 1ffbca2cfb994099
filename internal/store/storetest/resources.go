package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

func resourceTree() *resource.Tree {
	return resource.NewTree([]resource.Node{
		{Path: "hosts/linux/h01", Capacity: 1, Attributes: map[string]string{"cores": "8"}},
		{Path: "hosts/linux/h02", Capacity: 1, Attributes: map[string]string{"cores": "32"}},
		{Path: "db/prod/connections", Capacity: 4},
		{Path: "pool", Capacity: 3},
		{Path: "api/quota", Capacity: 3, Per: talon.Daily},
	})
}

// toReady is a blocked → ready transition asking for reqs.
func toReady(id int64, tree *resource.Tree, priority int, now time.Time, reqs ...resource.Request) store.Transition {
	return store.Transition{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Reason: "all passed", Now: now,
		Allocate: &store.Allocation{Tree: tree, Requests: reqs, Priority: priority}}
}

func req(path string, count int, where ...resource.Filter) resource.Request {
	return resource.Request{Path: path, Count: count, Where: where}
}

func holdsOf(t *testing.T, s store.Store, ids ...int64) []resource.Hold {
	t.Helper()
	hs, err := s.Holds(ctxOf(t), ids)
	if err != nil {
		t.Fatalf("Holds: %v", err)
	}
	return hs
}

func testResourceRequests(t *testing.T, open OpenFunc) {
	s := open(t)
	tree := resourceTree()
	tests := []struct {
		name       string
		reqs       []resource.Request
		want       []resource.Hold // run id 0 stands for the new run
		wantReason string
	}{
		{name: "wildcard", reqs: []resource.Request{req("hosts/linux/*", 1)}, want: []resource.Hold{{Path: "hosts/linux/h01", Units: 1}}},
		{name: "exact", reqs: []resource.Request{req("db/prod/connections", 3)}, want: []resource.Hold{{Path: "db/prod/connections", Units: 3}}},
		{name: "attribute filter", reqs: []resource.Request{req("hosts/linux/*", 1, resource.Filter{Attr: "cores", Op: ">=", Value: "16"})}, want: []resource.Hold{{Path: "hosts/linux/h02", Units: 1}}},
		{name: "wildcard full", reqs: []resource.Request{req("hosts/linux/*", 1)}, wantReason: "waiting for hosts/linux/*: 0 of 1 free (h01 held by run"},
		{name: "all or nothing", reqs: []resource.Request{req("pool", 1), req("db/prod/connections", 2)}, wantReason: "waiting for db/prod/connections: 1 of 2 free (held by run"},
		{name: "pool", reqs: []resource.Request{req("pool", 3), req("db/prod/connections", 1)}, want: []resource.Hold{{Path: "db/prod/connections", Units: 1}, {Path: "pool", Units: 3}}},
	}
	for _, tc := range tests {
		r := newRun(t, s, "j", "daily/2026-11-26")
		res := transition(t, s, toReady(r.ID, tree, 0, t0, tc.reqs...))
		for i := range tc.want {
			tc.want[i].RunID = r.ID
		}
		if tc.wantReason != "" {
			fenceErr(t, res.Err, "resources", tc.wantReason)
			if got := getRun(t, s, r.ID); got.State != talon.StateBlocked {
				t.Errorf("%s: run is %s, want blocked", tc.name, got.State)
			}
			// Out of the queue, so it reserves nothing for the next case.
			move(t, s, r.ID, talon.StateBlocked, talon.StateSkipped)
		} else if res.Err != nil {
			t.Fatalf("%s: %v", tc.name, res.Err)
		}
		if got := holdsOf(t, s, r.ID); (len(got) > 0 || len(tc.want) > 0) && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: holds = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// Capacity is never exceeded with many allocators on two handles.
func testResourceRace(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	tree := resourceTree()
	const n = 24
	var ps []store.CreateRun
	for i := range n {
		ps = append(ps, store.CreateRun{Job: fmt.Sprintf("j%d", i), Period: "daily/2026-11-26", Trigger: "api", Now: t0})
	}
	runs := create(t, handles[0], ps...)
	var won, fenced atomic.Int32
	errs := make(chan error, n)
	parallel(t, n, func(i int) {
		// Half take a host and a connection, half 2 units of the pool.
		reqs := []resource.Request{req("hosts/linux/*", 1), req("db/prod/connections", 1)}
		if i%2 == 1 {
			reqs = []resource.Request{req("pool", 2)}
		}
		res, err := handles[i%2].Transition(t.Context(), []store.Transition{toReady(runs[i].Run.ID, tree, 0, t0, reqs...)})
		var fe *store.FenceError
		switch {
		case err != nil:
			errs <- err
		case res[0].Err == nil:
			won.Add(1)
		case errors.As(res[0].Err, &fe) && fe.Constraint == "resources":
			fenced.Add(1)
		default:
			errs <- res[0].Err
		}
	})
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	used := map[string]int{}
	for _, h := range holdsOf(t, handles[1]) {
		used[h.Path] += h.Units
	}
	for _, n := range tree.Nodes() {
		if used[n.Path] > n.Capacity {
			t.Errorf("%s: %d used of %d", n.Path, used[n.Path], n.Capacity)
		}
	}
	// Two hosts and one pool of 3 (2 per run): exactly 3 runs fit,
	// whatever the interleaving (no waiter is ahead of anyone: queued
	// runs only reserve for runs younger than them, and the pool's
	// leftover unit is too small for any of them).
	if won.Load() != 3 || fenced.Load() != n-3 {
		t.Errorf("%d allocated, %d refused; want 3 and %d (used %v)", won.Load(), fenced.Load(), n-3, used)
	}
}

// Holds go when the run ends, whichever way, or goes back to blocked.
func testResourceRelease(t *testing.T, open OpenFunc) {
	s := open(t)
	tree := resourceTree()
	tests := []struct {
		name string
		path []talon.State // from ready
		why  string
	}{
		{name: "success", path: []talon.State{talon.StateRunning, talon.StateSucceeded}, why: "succeeded"},
		{name: "failure", path: []talon.State{talon.StateRunning, talon.StateFailed}, why: "exit status 1"},
		{name: "cancel of a ready run", path: []talon.State{talon.StateSkipped}, why: "cancelled by ops"},
		{name: "timeout", path: []talon.State{talon.StateRunning, talon.StateFailed}, why: "timeout after 1m"},
		{name: "lost while ready", path: []talon.State{talon.StateFailed}, why: "lost: scheduler gone while the run was ready"},
		{name: "lost while running", path: []talon.State{talon.StateRunning, talon.StateFailed}, why: "lost: scheduler gone"},
		{name: "back to blocked", path: []talon.State{talon.StateBlocked}, why: "max_running: 1 of 1 running"},
	}
	for _, tc := range tests {
		r := newRun(t, s, "j", "daily/2026-11-26")
		if res := transition(t, s, toReady(r.ID, tree, 0, t0, req("pool", 3), req("hosts/linux/*", 1))); res.Err != nil {
			t.Fatalf("%s: allocate: %v", tc.name, res.Err)
		}
		took := holdsOf(t, s, r.ID)
		if len(took) != 2 {
			t.Fatalf("%s: holds when ready = %+v, want 2", tc.name, took)
		}
		from := talon.StateReady
		for _, to := range tc.path {
			if res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{from}, To: to, Reason: tc.why, Now: t0}); res.Err != nil {
				t.Fatalf("%s: %s → %s: %v", tc.name, from, to, res.Err)
			}
			from = to
		}
		if got := holdsOf(t, s, r.ID); len(got) != 0 {
			t.Errorf("%s: holds after = %+v, want none", tc.name, got)
		}
		// The run's record keeps what it held.
		held, err := s.Held(t.Context(), r.ID)
		if err != nil {
			t.Fatalf("%s: Held: %v", tc.name, err)
		}
		if !slices.Equal(held, took) {
			t.Errorf("%s: Held after release = %+v, want %+v", tc.name, held, took)
		}
	}
}

// Consumable units return when the next period starts, not when runs end.
func testResourceConsumable(t *testing.T, open OpenFunc) {
	s := open(t)
	tree := resourceTree()
	take := func(now time.Time) store.Result {
		r := newRun(t, s, "j", "daily/2026-11-26")
		res := transition(t, s, toReady(r.ID, tree, 0, now, req("api/quota", 2)))
		from := talon.StateBlocked
		if res.Err == nil {
			from = talon.StateReady
		}
		move(t, s, r.ID, from, talon.StateSkipped)
		return res
	}
	if res := take(t0); res.Err != nil {
		t.Fatal(res.Err)
	}
	fenceErr(t, take(t0.Add(time.Hour)).Err, "resources", "waiting for api/quota: 1 of 2 free (held by run")
	if res := take(t0.Add(24 * time.Hour)); res.Err != nil {
		t.Fatalf("next day: %v", res.Err)
	}
	days := map[string]int{}
	for _, h := range holdsOf(t, s) {
		days[h.Period] += h.Units
	}
	if want := map[string]int{"daily/2026-11-26": 2, "daily/2026-11-27": 2}; !reflect.DeepEqual(days, want) {
		t.Errorf("used per period = %v, want %v", days, want)
	}
}

// The queue: an older waiter's large request is not starved by younger
// small ones, a higher priority goes first, and runs leave the queue when
// they leave blocked or are blocked by something else.
func testResourceFairness(t *testing.T, open OpenFunc) {
	s := open(t)
	tree := resourceTree()
	holder := newRun(t, s, "small", "daily/2026-11-26")
	if res := transition(t, s, toReady(holder.ID, tree, 0, t0, req("pool", 2))); res.Err != nil {
		t.Fatal(res.Err)
	}
	big := newRun(t, s, "big", "daily/2026-11-26")
	fenceErr(t, transition(t, s, toReady(big.ID, tree, 0, t0, req("pool", 3))).Err, "resources", "1 of 3 free")
	small := newRun(t, s, "small", "daily/2026-11-26")
	fenceErr(t, transition(t, s, toReady(small.ID, tree, 0, t0, req("pool", 1))).Err, "resources",
		fmt.Sprintf("0 of 1 free (held by run %d and reserved for run %d)", holder.ID, big.ID))
	urgent := newRun(t, s, "urgent", "daily/2026-11-26")
	if res := transition(t, s, toReady(urgent.ID, tree, 5, t0, req("pool", 1))); res.Err != nil {
		t.Fatalf("a higher priority is served before the queue: %v", res.Err)
	}
	ws, err := s.Waiters(ctxOf(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].RunID != big.ID || ws[1].RunID != small.ID || ws[0].Requests[0].Count != 3 || ws[0].Reason == "" {
		t.Fatalf("waiters = %+v, want big then small", ws)
	}
	move(t, s, holder.ID, talon.StateReady, talon.StateSkipped)
	move(t, s, urgent.ID, talon.StateReady, talon.StateSkipped)
	fenceErr(t, transition(t, s, toReady(small.ID, tree, 0, t0, req("pool", 1))).Err, "resources", "reserved for run")
	if res := transition(t, s, toReady(big.ID, tree, 0, t0, req("pool", 3))); res.Err != nil {
		t.Fatalf("the head of the queue: %v", res.Err)
	}
	// small is now blocked by a constraint, not by resources: it leaves
	// the queue.
	transition(t, s, store.Transition{RunID: small.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked, Now: t0, Reason: "not_before: 07:00",
		Decisions: []talon.Decision{{Constraint: "not_before", Action: talon.ActionBlock, Reason: "07:00"}}})
	if ws, _ := s.Waiters(ctxOf(t)); len(ws) != 0 {
		t.Errorf("waiters = %+v, want none", ws)
	}
}

// A batch that never commits (the scheduler died mid-allocation) leaves
// no hold, and the run can be allocated by the next scheduler.
func testResourceCrash(t *testing.T, open OpenFunc) {
	s := open(t)
	tree := resourceTree()
	r := newRun(t, s, "j", "daily/2026-11-26")
	other := newRun(t, s, "j", "daily/2026-11-26")
	ctx, cancel := context.WithCancel(ctxOf(t))
	cancel()
	if _, err := s.Transition(ctx, []store.Transition{toReady(r.ID, tree, 0, t0, req("pool", 3)), toReady(other.ID, tree, 0, t0, req("pool", 1))}); err == nil {
		t.Fatal("a cancelled batch committed")
	}
	if hs := holdsOf(t, s); len(hs) != 0 {
		t.Fatalf("holds after an aborted batch: %+v", hs)
	}
	s2 := open(t)
	if res := transition(t, s2, toReady(r.ID, tree, 0, t0, req("pool", 3))); res.Err != nil {
		t.Fatalf("after restart: %v", res.Err)
	}
}

// Items of one batch see each other's holds and releases.
func testResourceBatch(t *testing.T, open OpenFunc) {
	s := open(t)
	tree := resourceTree()
	a := runIn(t, s, "j", "daily/2026-11-26", talon.StateBlocked)
	b := runIn(t, s, "j", "daily/2026-11-26", talon.StateBlocked)
	c := runIn(t, s, "j", "daily/2026-11-26", talon.StateBlocked)
	res, err := s.Transition(ctxOf(t), []store.Transition{
		toReady(a.ID, tree, 0, t0, req("pool", 2)),
		toReady(b.ID, tree, 0, t0, req("pool", 2)),
		{RunID: a.ID, From: []talon.State{talon.StateReady}, To: talon.StateSkipped, Now: t0, Reason: "cancelled"},
		toReady(c.ID, tree, 0, t0, req("pool", 2)),
		toReady(c.ID, tree, 0, t0, req("pool", 1)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil || res[4].Err != nil {
		t.Fatalf("results = %v, %v, %v", res[0].Err, res[2].Err, res[4].Err)
	}
	fenceErr(t, res[1].Err, "resources", "waiting for pool: 1 of 2 free (held by run")
	// a released its 2 units, but b, older than c, queued for 2 of them.
	fenceErr(t, res[3].Err, "resources", fmt.Sprintf("waiting for pool: 1 of 2 free (reserved for run %d)", b.ID))
	want := []resource.Hold{{RunID: c.ID, Path: "pool", Units: 1}}
	if got := holdsOf(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("holds = %+v, want %+v", got, want)
	}
}
