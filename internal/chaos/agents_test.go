//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/view"
)

// TestAgentFaults is the harness's remote-agent part, with real
// processes: one `talon serve` (SQLite) and two `talon agent` on this
// host, each with one slot; jobs run this test binary (chaosjob), whose
// own history file says when each execution started, ticked and ended.
//
//	go test -tags chaos -count=1 -run TestAgentFaults -timeout 15m ./internal/chaos
//
// It uses the default agent lease (15 s), the one the README's bound
// (≤ 30 s) is about, and checks, in turn:
//
//   - SIGKILL of the agent running a run: the run is declared lost within
//     30 s, its process died with the agent, and its retry runs on the
//     other agent;
//   - SIGSTOP of the agent running a run, past its lease: the run's
//     supervisor kills it before the server declares it lost, and its
//     retry starts only after the original's last tick;
//   - the server killed (SIGKILL) and restarted, then stopped (SIGTERM)
//     and restarted, while a run goes on on an agent: the agent
//     reconnects, the run is re-attached and succeeds, once, not retried.
func TestAgentFaults(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dl, ok := t.Deadline(); ok {
		if time.Until(dl) < 6*time.Minute {
			t.Fatalf("the test's -timeout leaves %s; it needs about 5 minutes: pass -timeout 15m", time.Until(dl).Round(time.Second))
		}
		var c context.CancelFunc
		ctx, c = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer c()
	}
	dir, err := os.MkdirTemp("", "talon-chaos-agents-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if *flagKeep || t.Failed() {
			t.Logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := buildTalon(ctx, repo, dir)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := &agentRig{t: t, ctx: ctx, dir: dir, bin: bin, history: filepath.Join(dir, "history"), tick: *flagTick}
	schedPath := filepath.Join(dir, "schedule.yaml")
	if err := os.WriteFile(schedPath, []byte(agentSchedule(self, r.history, r.tick)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runOut(bin, "validate", schedPath); err != nil {
		t.Fatalf("the schedule does not validate: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	r.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	r.server, err = newScheduler("server", dir, bin, "sqlite:"+filepath.Join(dir, "talon.db"), schedPath, port, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r.cl = api.NewClient(r.url, nil)
	r.startServer()
	defer r.stopAll()
	for _, name := range []string{"a1", "a2"} {
		r.agents = append(r.agents, &agentProc{name: name, dir: filepath.Join(dir, name)})
	}
	for _, a := range r.agents {
		r.startAgent(a)
	}
	r.waitConnected("a1", "a2")

	t.Run("SIGKILL", r.sigkill)
	t.Run("SIGSTOP", r.sigstop)
	t.Run("ServerRestart", func(t *testing.T) { r.serverRestart(t, "kill") })
	t.Run("ServerStop", func(t *testing.T) { r.serverRestart(t, "term") })
}

// agentSchedule has a job per scenario: each runs chaosjob with a child
// that ticks (so a kill must take the tree), for a fixed time.
func agentSchedule(self, history string, tick time.Duration) string {
	job := func(name string, work time.Duration, retries int) string {
		return fmt.Sprintf(`  %s:
    executor: agent
    period: oneshot
    command: [%q, chaosjob, run, child]
    env: {CHAOS_HISTORY: %q, CHAOS_SELF: %q, CHAOS_SEED: "1", CHAOS_DUR: "%d-%d", CHAOS_FAIL: "0", CHAOS_TICK: %q}
    resources: {hosts/agents/*: 1}
    retries: {max: %d}
`, name, self, history, self, work.Milliseconds(), work.Milliseconds(), tick.String(), retries)
	}
	return "jobs:\n" + job("killed", 12*time.Second, 1) + job("stopped", 25*time.Second, 1) + job("survives", 8*time.Second, 0)
}

type agentRig struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	bin     string
	url     string
	history string
	tick    time.Duration
	cl      *api.Client
	server  *scheduler
	agents  []*agentProc
}

// agentProc is one agent, as the processes that ran it in turn.
type agentProc struct {
	name string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	n    int
	logs []string
}

func (r *agentRig) startServer() {
	r.t.Helper()
	p, err := r.server.start()
	if err != nil {
		r.t.Fatal(err)
	}
	wctx, c := context.WithTimeout(r.ctx, time.Minute)
	defer c()
	if err := p.waitServing(wctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *agentRig) startAgent(a *agentProc) {
	r.t.Helper()
	log := filepath.Join(r.dir, fmt.Sprintf("%s-%d.log", a.name, a.n))
	a.n++
	f, err := os.Create(log)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	a.cmd = exec.Command(r.bin, "agent", "--server", r.url, "--name", a.name, "--slots", "1", "--dir", a.dir)
	a.cmd.Stdout, a.cmd.Stderr = f, f
	a.cmd.Dir = r.dir
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	a.logs = append(a.logs, log)
	done := make(chan struct{})
	a.done = done
	cmd := a.cmd
	go func() { _ = cmd.Wait(); close(done) }()
}

func (a *agentProc) signal(sig syscall.Signal) time.Time {
	at := time.Now()
	_ = a.cmd.Process.Signal(sig)
	return at
}

func (r *agentRig) agent(name string) *agentProc {
	for _, a := range r.agents {
		if a.name == name {
			return a
		}
	}
	r.t.Fatalf("no agent %s", name)
	return nil
}

func (r *agentRig) stopAll() {
	for _, a := range r.agents {
		if a.cmd != nil {
			_ = a.cmd.Process.Signal(syscall.SIGCONT)
			_ = a.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-a.done:
			case <-time.After(20 * time.Second):
				_ = a.cmd.Process.Kill()
			}
		}
	}
	if p := r.server.current(); p != nil {
		_ = p.terminate(20 * time.Second)
	}
	if r.t.Failed() {
		for _, a := range r.agents {
			for _, l := range a.logs {
				b, _ := os.ReadFile(l)
				r.t.Logf("%s:\n%s", l, tail(b, 4000))
			}
		}
		for _, p := range r.server.all() {
			b, _ := os.ReadFile(p.logPath)
			r.t.Logf("%s:\n%s", p.logPath, tail(b, 6000))
		}
	}
}

// until polls fn (every 100 ms) until it is true or bound passes.
func (r *agentRig) until(t *testing.T, bound time.Duration, what string, fn func() (bool, error)) time.Time {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		ok, err := fn()
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) || r.ctx.Err() != nil {
			t.Fatalf("%s: not within %s (last error: %v)", what, bound, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *agentRig) waitConnected(names ...string) {
	r.t.Helper()
	r.until(r.t, time.Minute, "agents "+strings.Join(names, ", ")+" connected", func() (bool, error) {
		as, err := r.cl.Agents(r.ctx)
		if err != nil {
			return false, err
		}
		n := 0
		for _, a := range as {
			if slices.Contains(names, a.Name) && a.State == view.AgentConnected {
				n++
			}
		}
		return n == len(names), nil
	})
}

func (r *agentRig) session(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.agent(name).dir, "session"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (r *agentRig) trigger(t *testing.T, job, period string) talon.Run {
	t.Helper()
	run, _, err := r.cl.Trigger(r.ctx, job, talon.TriggerRequest{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func (r *agentRig) run(id int64) (view.RunDetail, error) { return r.cl.Run(r.ctx, id) }

// onAgent waits until run id runs, and returns the agent it holds.
func (r *agentRig) onAgent(t *testing.T, id int64) string {
	t.Helper()
	var name string
	r.until(t, time.Minute, fmt.Sprintf("run %d running on an agent", id), func() (bool, error) {
		d, err := r.run(id)
		if err != nil || d.State != talon.StateRunning || d.Resources == nil {
			return false, err
		}
		for _, h := range d.Resources.Held {
			if n, ok := store.AgentOf(h.Path); ok {
				name = n
				return true, nil
			}
		}
		return false, nil
	})
	return name
}

// ticking waits until run id's execution has ticked a few times.
func (r *agentRig) ticking(t *testing.T, id int64) {
	t.Helper()
	r.until(t, time.Minute, fmt.Sprintf("run %d ticking", id), func() (bool, error) {
		x, err := r.execution(id)
		return x != nil && x.last.Sub(x.start) > 3*r.tick, err
	})
}

// execution is run id's one execution in the history (nil before it
// started); more than one fails the test.
func (r *agentRig) execution(id int64) (*execution, error) {
	h, err := readHistory(r.history)
	if err != nil {
		return nil, err
	}
	xs := h.byRun[id]
	switch len(xs) {
	case 0:
		return nil, nil
	case 1:
		return xs[0], nil
	}
	return nil, fmt.Errorf("run %d started %d times", id, len(xs))
}

func (r *agentRig) waitState(t *testing.T, id int64, bound time.Duration, ok func(talon.State) bool) (view.RunDetail, time.Time) {
	t.Helper()
	var d view.RunDetail
	at := r.until(t, bound, fmt.Sprintf("run %d to end", id), func() (bool, error) {
		var err error
		d, err = r.run(id)
		return err == nil && ok(d.State), err
	})
	return d, at
}

func terminal(s talon.State) bool { return s.Terminal() }

// retryOf waits for the retry of run id and returns it.
func (r *agentRig) retryOf(t *testing.T, job string, id int64) talon.Run {
	t.Helper()
	var retry talon.Run
	r.until(t, time.Minute, fmt.Sprintf("the retry of run %d", id), func() (bool, error) {
		rs, err := r.cl.Runs(r.ctx, view.RunFilter{Job: job})
		if err != nil {
			return false, err
		}
		for _, x := range rs {
			if x.RetryOf == id {
				retry = x
				return true, nil
			}
		}
		return false, nil
	})
	return retry
}

func other(name string) string {
	if name == "a1" {
		return "a2"
	}
	return "a1"
}

// sigkill: the agent running a run is SIGKILLed.
func (r *agentRig) sigkill(t *testing.T) {
	run := r.trigger(t, "killed", "oneshot/sigkill")
	on := r.onAgent(t, run.ID)
	r.ticking(t, run.ID)
	a := r.agent(on)
	killedAt := a.signal(syscall.SIGKILL)
	<-a.done
	d, lostAt := r.waitState(t, run.ID, 40*time.Second, terminal)
	if d.State != talon.StateFailed || !strings.HasPrefix(d.Reason, "lost: agent "+on) {
		t.Fatalf("run %d is %s (%s), want failed: lost: agent %s …", run.ID, d.State, d.Reason, on)
	}
	detect := lostAt.Sub(killedAt)
	t.Logf("agent %s SIGKILLed at %s; run %d declared lost %s later (bound 30s): %s", on, clock(killedAt), run.ID, detect.Round(100*time.Millisecond), d.Reason)
	if detect > 30*time.Second {
		t.Errorf("lost %s after the agent died, want within 30s", detect)
	}
	x, err := r.execution(run.ID)
	if err != nil || x == nil {
		t.Fatalf("run %d's execution: %v", run.ID, err)
	}
	_, possible := x.aliveUntil(r.tick)
	if possible.After(killedAt.Add(time.Second)) {
		t.Errorf("run %d's processes lived until %s, after their agent died at %s: they must die with it", run.ID, clock(possible), clock(killedAt))
	}
	retry := r.retryOf(t, "killed", run.ID)
	if got := r.onAgent(t, retry.ID); got != other(on) {
		t.Errorf("retry %d runs on %s, want the other agent %s", retry.ID, got, other(on))
	}
	rd, _ := r.waitState(t, retry.ID, time.Minute, terminal)
	if rd.State != talon.StateSucceeded {
		t.Errorf("retry %d is %s (%s)", retry.ID, rd.State, rd.Reason)
	}
	rx, err := r.execution(retry.ID)
	if err != nil || rx == nil {
		t.Fatalf("retry %d's execution: %v", retry.ID, err)
	}
	if !rx.start.After(possible) {
		t.Errorf("retry %d started at %s, while run %d may still have run (until %s)", retry.ID, clock(rx.start), run.ID, clock(possible))
	}
	r.startAgent(a)
	r.waitConnected("a1", "a2")
}

// sigstop: the agent running a run is frozen past its lease.
func (r *agentRig) sigstop(t *testing.T) {
	run := r.trigger(t, "stopped", "oneshot/sigstop")
	on := r.onAgent(t, run.ID)
	r.ticking(t, run.ID)
	a := r.agent(on)
	before := r.session(t, on)
	stoppedAt := a.signal(syscall.SIGSTOP)
	d, lostAt := r.waitState(t, run.ID, 40*time.Second, terminal)
	if d.State != talon.StateFailed || !strings.HasPrefix(d.Reason, "lost: agent "+on) {
		t.Fatalf("run %d is %s (%s), want failed: lost: agent %s …", run.ID, d.State, d.Reason, on)
	}
	t.Logf("agent %s SIGSTOPped at %s; run %d declared lost %s later: %s", on, clock(stoppedAt), run.ID, lostAt.Sub(stoppedAt).Round(100*time.Millisecond), d.Reason)
	retry := r.retryOf(t, "stopped", run.ID)
	if got := r.onAgent(t, retry.ID); got != other(on) {
		t.Errorf("retry %d runs on %s, want the other agent %s", retry.ID, got, other(on))
	}
	r.ticking(t, retry.ID)
	contAt := a.signal(syscall.SIGCONT)
	t.Logf("agent %s SIGCONTed at %s, %s after it was stopped", on, clock(contAt), contAt.Sub(stoppedAt).Round(100*time.Millisecond))

	x, err := r.execution(run.ID)
	if err != nil || x == nil {
		t.Fatalf("run %d's execution: %v", run.ID, err)
	}
	rx, err := r.execution(retry.ID)
	if err != nil || rx == nil {
		t.Fatalf("retry %d's execution: %v", retry.ID, err)
	}
	certain, possible := x.aliveUntil(r.tick)
	t.Logf("run %d last ticked at %s (%s after its agent froze); its retry %d started at %s, %s later",
		run.ID, clock(certain), certain.Sub(stoppedAt).Round(100*time.Millisecond), retry.ID, clock(rx.start), rx.start.Sub(certain).Round(100*time.Millisecond))
	if !x.end.IsZero() {
		t.Errorf("run %d ended by itself (%s): it should have been killed mid-run", run.ID, x.status)
	}
	if !rx.start.After(possible) {
		t.Errorf("retry %d started at %s while run %d may still have run (last tick %s, possible until %s): they overlap",
			retry.ID, clock(rx.start), run.ID, clock(certain), clock(possible))
	}
	if d.Finished != nil && !possible.Before(*d.Finished) {
		t.Errorf("run %d was declared lost at %s but may have run until %s", run.ID, clock(*d.Finished), clock(possible))
	}
	// Woken, the agent finds its lease lapsed and registers a new session.
	r.until(t, time.Minute, "agent "+on+" registered again", func() (bool, error) { return r.session(t, on) != before, nil })
	r.waitConnected("a1", "a2")
	rd, _ := r.waitState(t, retry.ID, 2*time.Minute, terminal)
	if rd.State != talon.StateSucceeded {
		t.Errorf("retry %d is %s (%s)", retry.ID, rd.State, rd.Reason)
	}
}

// serverRestart: the server is killed (or stopped) and started again
// while a run goes on on an agent.
func (r *agentRig) serverRestart(t *testing.T, how string) {
	run := r.trigger(t, "survives", "oneshot/restart-"+how)
	on := r.onAgent(t, run.ID)
	r.ticking(t, run.ID)
	p := r.server.current()
	at := time.Now()
	if how == "kill" {
		p.kill()
	} else if err := p.terminate(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	r.startServer()
	t.Logf("server %s at %s, serving again %s later; the run is on %s", map[string]string{"kill": "SIGKILLed", "term": "stopped (SIGTERM)"}[how], clock(at), time.Since(at).Round(100*time.Millisecond), on)
	d, _ := r.waitState(t, run.ID, time.Minute, terminal)
	if d.State != talon.StateSucceeded {
		t.Fatalf("run %d is %s (%s), want succeeded on its agent", run.ID, d.State, d.Reason)
	}
	reattached := false
	for _, ev := range d.Events {
		if strings.HasPrefix(ev.Reason, "re-attached by scheduler") {
			reattached = true
		}
	}
	if !reattached {
		t.Errorf("run %d's history has no re-attachment: %+v", run.ID, d.Events)
	}
	x, err := r.execution(run.ID)
	if err != nil || x == nil || !x.endedCleanly() || x.status != "0" {
		t.Errorf("run %d's execution: %+v, %v; want one, ended by itself with 0", run.ID, x, err)
	}
	rs, err := r.cl.Runs(r.ctx, view.RunFilter{Job: "survives", Period: "oneshot/restart-" + how})
	if err != nil || len(rs) != 1 {
		t.Errorf("runs of the period = %d, %v; want the one, not retried", len(rs), err)
	}
	r.waitConnected("a1", "a2")
}
