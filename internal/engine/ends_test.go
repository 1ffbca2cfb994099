package engine

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
)

// batchStore records the transitions of each Transition call.
type batchStore struct {
	store.Store
	mu      sync.Mutex
	batches [][]store.Transition
}

func (s *batchStore) Transition(ctx context.Context, ts []store.Transition) ([]store.Result, error) {
	s.mu.Lock()
	s.batches = append(s.batches, ts)
	s.mu.Unlock()
	return s.Store.Transition(ctx, ts)
}

// batchOf returns the index of the first batch with a transition of run
// id to state to, or -1.
func (s *batchStore) batchOf(id int64, to talon.State) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.batches {
		for _, t := range b {
			if t.RunID == id && t.To == to {
				return i
			}
		}
	}
	return -1
}

// TestEndsRideWithDecisions: a run's end that cannot change the decisions
// of a step is recorded in their transaction; one that can (the decided
// run waits for its job) is recorded before them, so they see it.
func TestEndsRideWithDecisions(t *testing.T) {
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "schedule.yaml", []byte(`
jobs:
  up:
    period: daily
    executor: inprocess
    command: [gated]
  other:
    period: daily
    executor: inprocess
    command: [noop]
  down:
    period: daily
    constraints: {after: [up]}
    executor: inprocess
    command: [noop]
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bs := &batchStore{Store: st}
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ip := inprocess.New()
	gate := make(chan struct{})
	ip.Register("gated", func(context.Context, inprocess.Run) error { <-gate; return nil })
	ip.Register("noop", func(context.Context, inprocess.Run) error { return nil })
	e, err := New(Config{
		Store: bs, Schedule: s, Now: func() time.Time { return now },
		Executors: map[string]executor.Executor{"inprocess": ip}, LogDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// endQueued runs up until its end waits to be recorded.
	endQueued := func(period string) talon.Run {
		t.Helper()
		gate = make(chan struct{})
		r, _, err := e.Trigger(ctx, "up", talon.TriggerRequest{Period: period})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Step(ctx, now); err != nil {
			t.Fatal(err)
		}
		if bs.batchOf(r.ID, talon.StateRunning) < 0 {
			t.Fatalf("run %d of up not started", r.ID)
		}
		close(gate)
		deadline := time.After(10 * time.Second)
		// Its own end: another run's (other's, a no-op) may arrive first.
		for {
			e.mu.Lock()
			ended := slices.ContainsFunc(e.done, func(c completion) bool { return c.runID == r.ID })
			e.mu.Unlock()
			if ended {
				return r
			}
			select {
			case <-e.kick:
			case <-deadline:
				t.Fatal("up's end never reached the engine")
			}
		}
	}

	up := endQueued("")
	o, _, err := e.Trigger(ctx, "other", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Step(ctx, now); err != nil {
		t.Fatal(err)
	}
	end, start := bs.batchOf(up.ID, talon.StateSucceeded), bs.batchOf(o.ID, talon.StateReady)
	if end < 0 || end != start {
		t.Fatalf("up's end in batch %d, other's start in batch %d: want one batch", end, start)
	}

	// A day whose up has not succeeded before: down passes only once it
	// sees this end.
	up = endQueued("daily/2026-11-29")
	d, _, err := e.Trigger(ctx, "down", talon.TriggerRequest{Period: "daily/2026-11-29"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Step(ctx, now); err != nil {
		t.Fatal(err)
	}
	end, start = bs.batchOf(up.ID, talon.StateSucceeded), bs.batchOf(d.ID, talon.StateReady)
	if end < 0 || start <= end {
		t.Fatalf("up's end in batch %d, down's start in batch %d: want the end first", end, start)
	}
	if b := bs.batchOf(d.ID, talon.StateBlocked); b >= 0 {
		t.Fatalf("down was decided blocked (batch %d): the decision did not see up's end", b)
	}
}
