package storetest

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

const agentLease = time.Minute

func agentNamed(name, session string) store.Agent {
	return store.Agent{Name: name, Session: session, Slots: 2, Labels: map[string]string{"os": "linux", "cores": "8"}, Host: "h1", Version: "test", By: "node-token"}
}

func register(t *testing.T, s store.Store, a store.Agent, previous string, lease time.Duration) (store.Agent, []store.AgentRun) {
	t.Helper()
	got, lost, err := s.RegisterAgent(ctxOf(t), a, previous, lease)
	if err != nil {
		t.Fatalf("RegisterAgent(%s, %s): %v", a.Name, a.Session, err)
	}
	return got, lost
}

func offer(t *testing.T, s store.Store, runID int64, agent string) store.AgentRun {
	t.Helper()
	r, err := s.OfferAgentRun(ctxOf(t), store.AgentRun{RunID: runID, Agent: agent, Job: "j", Spec: []byte(`{"run":1}`)})
	if err != nil {
		t.Fatalf("OfferAgentRun(%d, %s): %v", runID, agent, err)
	}
	return r
}

func agentRun(t *testing.T, s store.Store, id int64) store.AgentRun {
	t.Helper()
	rs, err := s.AgentRuns(ctxOf(t), store.AgentRunFilter{IDs: []int64{id}})
	if err != nil || len(rs) != 1 {
		t.Fatalf("AgentRuns(%d) = %v, %v; want one", id, rs, err)
	}
	return rs[0]
}

// testAgentRegister: a session holds its agent's name while its lease
// lives; a restarted agent naming its earlier session takes the name at
// once, and that session's runs end lost in the same transaction.
func testAgentRegister(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := ctxOf(t)
	a, lost := register(t, s, agentNamed("a1", "s1"), "", agentLease)
	if len(lost) != 0 || a.Heartbeat.IsZero() || !a.Expires.After(a.Heartbeat) || a.Labels["os"] != "linux" || a.By != "node-token" {
		t.Fatalf("registered %+v, lost %v", a, lost)
	}
	if d := a.Expires.Sub(a.Heartbeat); d != agentLease {
		t.Errorf("lease = %s, want %s", d, agentLease)
	}
	// Another process under the same name is refused while s1 lives.
	_, _, err := s.RegisterAgent(ctx, agentNamed("a1", "s2"), "", agentLease)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "agent a1 is already connected") {
		t.Fatalf("second session = %v, want a conflict naming the agent", err)
	}
	// Registering s1 again (an answer lost) renews it.
	again, _ := register(t, s, agentNamed("a1", "s1"), "", agentLease)
	if !again.Registered.Equal(a.Registered) {
		t.Errorf("registering the same session again moved Registered: %s → %s", a.Registered, again.Registered)
	}
	r := newRun(t, s, "j", "daily/2026-11-26")
	offer(t, s, r.ID, "a1")
	// s2 says it follows s1: s1's run ends lost with it.
	b, lost := register(t, s, agentNamed("a1", "s2"), "s1", agentLease)
	if b.Session != "s2" || len(lost) != 1 || lost[0].RunID != r.ID || lost[0].State != store.AgentEnded ||
		!strings.HasPrefix(lost[0].Reason, "lost: agent a1 registered again") {
		t.Fatalf("takeover: %+v, lost %+v", b, lost)
	}
	if got := agentRun(t, s, r.ID); got.State != store.AgentEnded || got.Spec != nil || got.Succeeded {
		t.Errorf("run after takeover = %+v", got)
	}
	if _, err := s.RenewAgent(ctx, "a1", "s1", agentLease); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("renewing the replaced session = %v, want ErrNotFound", err)
	}
	if got, err := s.RenewAgent(ctx, "a1", "s2", agentLease); err != nil || !got.Heartbeat.After(b.Heartbeat) && !got.Heartbeat.Equal(b.Heartbeat) {
		t.Errorf("renew = %+v, %v", got, err)
	}
	for _, bad := range []store.Agent{
		{Name: "a/b", Session: "x", Slots: 1},
		{Name: "a1", Session: "", Slots: 1},
		{Name: "a1", Session: "x", Slots: 0},
		{Name: "a1", Session: "x", Slots: 1, Labels: map[string]string{"bad key": "v"}},
		{Name: "a1", Session: "x", Slots: 1, Labels: map[string]string{"k": "two\nlines"}},
	} {
		if _, _, err := s.RegisterAgent(ctx, bad, "", agentLease); err == nil {
			t.Errorf("RegisterAgent(%+v) accepted", bad)
		}
	}
	agents, now, err := s.Agents(ctx)
	if err != nil || len(agents) != 1 || agents[0].Session != "s2" || !agents[0].Live(now) {
		t.Errorf("Agents = %+v at %s, %v", agents, now, err)
	}
}

// testAgentRegisterRace: two processes register one name at once, on
// two handles: exactly one holds it.
func testAgentRegisterRace(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	var won atomic.Int32
	parallel(t, 8, func(i int) {
		_, _, err := handles[i%2].RegisterAgent(ctxOf(t), agentNamed("a1", "s"+string(rune('a'+i))), "", agentLease)
		switch {
		case err == nil:
			won.Add(1)
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("register: %v", err)
		}
	})
	if won.Load() != 1 {
		t.Errorf("%d sessions registered one name, want 1", won.Load())
	}
}

// testAgentRunMoves: offered → taken → started → ended, each move by the
// session it was handed to, the spec dropped once the run started.
func testAgentRunMoves(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := ctxOf(t)
	r := newRun(t, s, "j", "daily/2026-11-26")
	if _, err := s.OfferAgentRun(ctx, store.AgentRun{RunID: r.ID, Agent: "nobody", Job: "j"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("offer to an unknown agent = %v, want ErrConflict", err)
	}
	register(t, s, agentNamed("a1", "s1"), "", agentLease)
	o := offer(t, s, r.ID, "a1")
	if o.State != store.AgentOffered || o.Session != "s1" || o.Offered.IsZero() || o.Job != "j" {
		t.Fatalf("offered %+v", o)
	}
	if _, err := s.OfferAgentRun(ctx, store.AgentRun{RunID: r.ID, Agent: "a1", Job: "j"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("offering a run twice = %v, want ErrConflict", err)
	}
	if got, err := s.TakeAgentRuns(ctx, "a1", "other", []int64{r.ID}); err != nil || len(got) != 0 {
		t.Errorf("another session takes = %v, %v; want nothing", got, err)
	}
	for range 2 { // a take whose answer was lost is answered again
		got, err := s.TakeAgentRuns(ctx, "a1", "s1", []int64{r.ID, 99999})
		if err != nil || len(got) != 1 || got[0].State != store.AgentTaken || string(got[0].Spec) != `{"run":1}` {
			t.Fatalf("take = %+v, %v", got, err)
		}
	}
	if _, err := s.WithdrawAgentRun(ctx, r.ID, "too late"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("withdrawing a taken run = %v, want ErrConflict", err)
	}
	if _, err := s.StartAgentRun(ctx, r.ID, "other", 42); !errors.Is(err, store.ErrConflict) {
		t.Errorf("start by another session = %v, want ErrConflict", err)
	}
	st, err := s.StartAgentRun(ctx, r.ID, "s1", 42)
	if err != nil || st.State != store.AgentStarted || st.PID != 42 || st.Spec != nil || st.Started.IsZero() {
		t.Fatalf("start = %+v, %v", st, err)
	}
	if got, _ := s.TakeAgentRuns(ctx, "a1", "s1", []int64{r.ID}); len(got) != 0 {
		t.Errorf("take after the start = %+v, want nothing", got)
	}
	if _, err := s.StartAgentRun(ctx, r.ID, "s1", 42); err != nil {
		t.Errorf("a start reported again = %v", err)
	}
	if open, err := s.AgentRuns(ctx, store.AgentRunFilter{Agent: "a1", Open: true}); err != nil || len(open) != 1 {
		t.Errorf("open runs of a1 = %v, %v", open, err)
	}
	end, err := s.EndAgentRun(ctx, r.ID, "s1", store.AgentOutcome{Succeeded: false, ExitCode: 3, Reason: "exit status 3", Ago: time.Hour})
	if err != nil || end.State != store.AgentEnded || end.ExitCode != 3 || end.Reason != "exit status 3" {
		t.Fatalf("end = %+v, %v", end, err)
	}
	if !end.Ended.Equal(st.Started) {
		t.Errorf("a run said to have ended before it started ends at %s, want its start %s", end.Ended, st.Started)
	}
	if _, err := s.EndAgentRun(ctx, r.ID, "s1", store.AgentOutcome{Succeeded: true}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second end = %v, want ErrConflict", err)
	}
	if got := agentRun(t, s, r.ID); got.Succeeded || got.ExitCode != 3 {
		t.Errorf("after a second end: %+v", got)
	}
	if open, _ := s.AgentRuns(ctx, store.AgentRunFilter{Agent: "a1", Open: true}); len(open) != 0 {
		t.Errorf("open runs after the end = %+v", open)
	}
}

// testAgentCancel: a cancel of a run not yet taken ends it at once; of a
// started run, it is kept for the agent until the run ends.
func testAgentCancel(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := ctxOf(t)
	register(t, s, agentNamed("a1", "s1"), "", agentLease)
	waiting, running := newRun(t, s, "j", "daily/2026-11-26"), newRun(t, s, "j", "daily/2026-11-27")
	offer(t, s, waiting.ID, "a1")
	offer(t, s, running.ID, "a1")
	if _, err := s.TakeAgentRuns(ctx, "a1", "s1", []int64{running.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAgentRun(ctx, running.ID, "s1", 7); err != nil {
		t.Fatal(err)
	}
	c, err := s.CancelAgentRun(ctx, waiting.ID, "cancelled by alice")
	if err != nil || c.State != store.AgentEnded || c.Reason != "cancelled by alice" {
		t.Errorf("cancel of an offered run = %+v, %v", c, err)
	}
	c, err = s.CancelAgentRun(ctx, running.ID, "timeout after 1m")
	if err != nil || c.State != store.AgentStarted || c.Cancel != "timeout after 1m" {
		t.Errorf("cancel of a started run = %+v, %v", c, err)
	}
	if c, _ := s.CancelAgentRun(ctx, running.ID, "cancelled by bob"); c.Cancel != "timeout after 1m" {
		t.Errorf("a second cancel replaced the first: %q", c.Cancel)
	}
	if _, err := s.CancelAgentRun(ctx, 99999, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancel of an unknown run = %v, want ErrNotFound", err)
	}
	w := newRun(t, s, "j", "daily/2026-11-28")
	offer(t, s, w.ID, "a1")
	if got, err := s.WithdrawAgentRun(ctx, w.ID, "agent a1 did not take the run"); err != nil || got.State != store.AgentEnded {
		t.Errorf("withdraw = %+v, %v", got, err)
	}
}

// waitExpired calls ExpireAgentRuns until it returns a run (an agent's
// lease runs out by the database's clock, which no test can move).
func waitExpired(t *testing.T, s store.Store) []store.AgentRun {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rs, err := s.ExpireAgentRuns(ctxOf(t))
		if err != nil {
			t.Fatalf("ExpireAgentRuns: %v", err)
		}
		if len(rs) > 0 {
			return rs
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no run expired within 10s")
	return nil
}

// testAgentExpire: once a session's lease runs out by the database's
// clock its open runs end lost, the agent may not renew it, its late
// report is refused, and its node leaves the resource tree.
func testAgentExpire(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := ctxOf(t)
	const lease = 300 * time.Millisecond
	register(t, s, agentNamed("a1", "s1"), "", lease)
	register(t, s, agentNamed("a2", "s2"), "", agentLease)
	tree := resource.NewTree(nil)
	r := newRun(t, s, "j", "daily/2026-11-26")
	res := transition(t, s, toReady(r.ID, tree, 0, t0, req("hosts/agents/a1", 1)))
	if res.Err != nil {
		t.Fatalf("allocate the live agent a1: %v", res.Err)
	}
	if hs := holdsOf(t, s, r.ID); len(hs) != 1 || hs[0].Path != "hosts/agents/a1" {
		t.Errorf("holds = %+v", hs)
	}
	offer(t, s, r.ID, "a1")
	other := newRun(t, s, "j", "daily/2026-11-27")
	offer(t, s, other.ID, "a2")
	if rs, err := s.ExpireAgentRuns(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("expired while the leases live: %v, %v", rs, err)
	}
	rs := waitExpired(t, s)
	if len(rs) != 1 || rs[0].RunID != r.ID || !strings.HasPrefix(rs[0].Reason, "lost: agent a1 missed its heartbeats") || rs[0].ExitCode != -1 {
		t.Fatalf("expired %+v, want run %d lost", rs, r.ID)
	}
	if got := agentRun(t, s, other.ID); got.State != store.AgentOffered {
		t.Errorf("the live agent's run = %+v", got)
	}
	if _, err := s.RenewAgent(ctx, "a1", "s1", lease); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("renewing an expired lease = %v, want ErrNotFound", err)
	}
	if _, err := s.EndAgentRun(ctx, r.ID, "s1", store.AgentOutcome{Succeeded: true}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a report after the loss = %v, want ErrConflict", err)
	}
	if _, err := s.OfferAgentRun(ctx, store.AgentRun{RunID: newRun(t, s, "j", "daily/2026-11-28").ID, Agent: "a1", Job: "j"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("offer to an expired agent = %v, want ErrConflict", err)
	}
	// Its node is gone: the wildcard finds a2 only, then nothing more.
	for i, want := range []string{"", "hosts/agents/a2", "hosts/agents/a2", "waiting for hosts/agents/a1: no such resource"} {
		x := newRun(t, s, "j", "daily/2026-12-0"+string(rune('1'+i)))
		reqs := []resource.Request{req("hosts/agents/*", 1)}
		if i == 3 {
			reqs = []resource.Request{req("hosts/agents/a1", 1)}
		}
		res := transition(t, s, toReady(x.ID, tree, 0, t0, reqs...))
		switch {
		case i == 0:
			continue // a2's first slot
		case strings.HasPrefix(want, "waiting"):
			fenceErr(t, res.Err, "resources", want)
		case i == 2:
			fenceErr(t, res.Err, "resources", "waiting for hosts/agents/*: 0 of 1 free")
			move(t, s, x.ID, talon.StateBlocked, talon.StateSkipped) // out of the queue
		case res.Err != nil:
			t.Errorf("allocate %d: %v", i, res.Err)
		default:
			if hs := holdsOf(t, s, x.ID); len(hs) != 1 || hs[0].Path != want {
				t.Errorf("allocate %d: holds %+v, want %s", i, hs, want)
			}
		}
	}
	// The lost run is recorded failed (its hold goes), and a1,
	// registered again, is back.
	move(t, s, r.ID, talon.StateReady, talon.StateFailed)
	register(t, s, agentNamed("a1", "s3"), "", agentLease)
	x := newRun(t, s, "j", "daily/2026-12-09")
	if res := transition(t, s, toReady(x.ID, tree, 0, t0, req("hosts/agents/*", 1, resource.Filter{Attr: "cores", Op: ">=", Value: "8"}))); res.Err != nil {
		t.Errorf("allocate after a1 came back: %v", res.Err)
	}
	if got := getRun(t, s, x.ID); got.State != talon.StateReady {
		t.Errorf("run is %s", got.State)
	}
}
