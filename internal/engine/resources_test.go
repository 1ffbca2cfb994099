package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor/inprocess"
)

// Runs ask for db/{{environment}}/connections: each environment has its
// own pool, a run waits while its own is held and starts as soon as the
// holder ends, and TALON_RESOURCES names what it got.
func TestResourcesByEnvironment(t *testing.T) {
	const sched = `
resources:
  db/prod/connections: 1
  db/dev/connections: 1
jobs:
  prod:
    environment: prod
    executor: inprocess
    command: [hold]
    resources:
      db/{{environment}}/connections: 1
  prod2:
    environment: prod
    executor: inprocess
    command: [hold]
    resources:
      db/{{environment}}/connections: 1
  dev:
    environment: dev
    executor: inprocess
    command: [hold]
    resources:
      db/{{environment}}/connections: 1
`
	var mu sync.Mutex
	got := map[string]string{} // job → TALON_RESOURCES
	release := map[string]chan struct{}{"prod": make(chan struct{}), "prod2": make(chan struct{}), "dev": make(chan struct{})}
	hold := func(ctx context.Context, r inprocess.Run) error {
		for _, kv := range r.Env {
			if v, ok := strings.CutPrefix(kv, "TALON_RESOURCES="); ok {
				mu.Lock()
				got[r.Run.Job] = v
				mu.Unlock()
			}
		}
		select {
		case <-release[r.Run.Job]:
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		return nil
	}
	now := mustTime(t, "2026-11-26T10:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{"hold": hold})
	p := b.trigger(t, "prod", talon.TriggerRequest{})
	d := b.trigger(t, "dev", talon.TriggerRequest{})
	p2 := b.trigger(t, "prod2", talon.TriggerRequest{})
	// Step, not settle: settle waits for running runs to end.
	step := func() {
		if _, err := b.e.Step(context.Background(), now); err != nil {
			t.Fatalf("step: %v", err)
		}
	}
	step()
	step()
	state := func(id int64) talon.Run {
		r, err := b.st.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if s := state(p.ID).State; s != talon.StateRunning {
		t.Fatalf("prod is %s, want running", s)
	}
	if s := state(d.ID).State; s != talon.StateRunning {
		t.Fatalf("dev is %s, want running: environments have their own pools", s)
	}
	r := state(p2.ID)
	if want := "resources: waiting for db/prod/connections: 0 of 1 free (held by run 1)"; r.State != talon.StateBlocked || r.Reason != want {
		t.Fatalf("prod2: %s %q, want blocked %q", r.State, r.Reason, want)
	}
	detail, err := b.q.Run(context.Background(), p2.ID)
	if err != nil || detail.Resources == nil || !strings.HasPrefix(detail.Resources.Waiting, "waiting for db/prod/connections") {
		t.Fatalf("show prod2: %+v, %v", detail.Resources, err)
	}
	view, err := b.q.Resources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range view.Resources {
		if n.Used != 1 || len(n.Holders) != 1 {
			t.Errorf("%s: used %d by %v, want 1", n.Path, n.Used, n.Holders)
		}
	}

	close(release["prod"])
	deadline := time.Now().Add(10 * time.Second)
	for state(p2.ID).State != talon.StateRunning {
		if time.Now().After(deadline) {
			t.Fatalf("prod2 is %s 10s after prod was let go", state(p2.ID).State)
		}
		step()
	}
	close(release["prod2"])
	close(release["dev"])
	b.settle(t)
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{"prod": `{"db/prod/connections":1}`, "prod2": `{"db/prod/connections":1}`, "dev": `{"db/dev/connections":1}`}
	for job, w := range want {
		if got[job] != w {
			t.Errorf("%s: TALON_RESOURCES = %q, want %q", job, got[job], w)
		}
	}
}
