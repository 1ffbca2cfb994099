package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

// BenchAllocate measures allocation decisions, as the engine makes them:
// batches of batch blocked → ready transitions with resource requests,
// over a tree of nodes resources (pools of 100 hosts of capacity 1, a
// shared connection pool and a scarce gpu pool) and runs blocked runs.
// Each run asks for one host of its pool and a connection; one in 50
// also asks for 2 of the 4 gpus, so the queue is never empty and its
// head reserves units. Runs allocated 10 batches ago go back to blocked
// (releasing what they hold), so the tree stays about half used. It
// reports decisions/s: allocation attempts, granted or refused, per
// second of wall time, releases included.
func BenchAllocate(b *testing.B, open func(b *testing.B) store.Store, resources, runs, batch int) {
	s := open(b)
	pools := max(resources/100, 1)
	nodes := make([]resource.Node, 0, resources+2)
	for i := 0; i < resources-2; i++ {
		nodes = append(nodes, resource.Node{Path: fmt.Sprintf("hosts/p%03d/h%05d", i%pools, i), Capacity: 1, Attributes: map[string]string{"cores": "16"}})
	}
	nodes = append(nodes, resource.Node{Path: "db/connections", Capacity: runs}, resource.Node{Path: "gpu", Capacity: 4})
	tree := resource.NewTree(nodes)
	ps := make([]store.CreateRun, runs)
	for i := range ps {
		ps[i] = store.CreateRun{Job: fmt.Sprintf("job%05d", i), Period: "daily/2026-11-26", Trigger: "cron", FireTime: t0, Now: t0}
	}
	out, err := s.CreateRuns(b.Context(), ps)
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([][]resource.Request, runs)
	for i := range reqs {
		reqs[i] = []resource.Request{
			{Path: fmt.Sprintf("hosts/p%03d/*", i%pools), Count: 1, Where: []resource.Filter{{Attr: "cores", Op: ">=", Value: "8"}}},
			{Path: "db/connections", Count: 1},
		}
		if i%50 == 0 {
			reqs[i] = append(reqs[i], resource.Request{Path: "gpu", Count: 2})
		}
	}
	keep := 10 // batches allocated at once
	var live [][]int64
	next, decisions := 0, 0
	b.ReportAllocs()
	// Not b.Loop: go1.26's keep-alive rewrite of its body crashes the
	// compiler (escape analysis, nil type) on this loop.
	b.ResetTimer()
	for range b.N {
		ts := make([]store.Transition, 0, batch)
		for len(ts) < batch {
			i := next % runs
			next++
			id := out[i].Run.ID
			ts = append(ts, store.Transition{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Reason: "all passed", Now: t0,
				Allocate: &store.Allocation{Tree: tree, Requests: reqs[i]}})
		}
		res, err := s.Transition(b.Context(), ts)
		if err != nil {
			b.Fatal(err)
		}
		var got []int64
		for k, r := range res {
			switch {
			case r.Err == nil:
				got = append(got, ts[k].RunID)
			case errors.Is(r.Err, store.ErrFenced), errors.Is(r.Err, store.ErrConflict):
				// Refused, or still ready from an earlier lap: a
				// decision all the same.
			default:
				b.Fatal(r.Err)
			}
		}
		decisions += len(ts)
		live = append(live, got)
		if len(live) > keep {
			first := live[0]
			live = live[1:]
			backToBlocked(b, s, first)
		}
	}
	b.ReportMetric(float64(decisions)/b.Elapsed().Seconds(), "decisions/s")
}

// backToBlocked moves ready runs back to blocked, releasing their holds.
func backToBlocked(b *testing.B, s store.Store, ids []int64) {
	back := make([]store.Transition, 0, len(ids))
	for _, id := range ids {
		back = append(back, store.Transition{RunID: id, From: []talon.State{talon.StateReady}, To: talon.StateBlocked, Reason: "released", Now: t0.Add(time.Second)})
	}
	if _, err := s.Transition(b.Context(), back); err != nil {
		b.Fatal(err)
	}
}
