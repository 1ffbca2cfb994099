//go:build linux

package agent_test

import (
	"bufio"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/agent"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/api/apitest"
	"github.com/talonhq/talon/internal/executor"
	agentexec "github.com/talonhq/talon/internal/executor/agent"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/talontest"
)

// These tests run the agent in the test process (its runs' supervisor is
// this test binary, as it is talon for `talon agent`) against a server of
// the agents' protocol over a real store, through a proxy the test cuts:
// the server unreachable, as a network partition or a server restart
// makes it.

type rig struct {
	t     *testing.T
	st    store.Store
	dir   string
	ex    *agentexec.Executor
	proxy *talontest.Proxy
	ready chan string // sessions the agent registered
	stop  func()
}

func newRig(t *testing.T, lease time.Duration) *rig {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := filepath.Join(dir, "server-logs")
	ex, err := agentexec.New(agentexec.Config{Store: st, Lease: lease, Poll: 50 * time.Millisecond,
		LogPath: func(r talon.Run) string {
			return filepath.Join(logs, r.Job, strconv.FormatInt(r.ID, 10)+".log")
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	srv := httptest.NewServer(api.NewServer(apitest.New(), slog.New(slog.DiscardHandler), api.WithAgents(ex)))
	t.Cleanup(srv.Close)
	proxy := talontest.NewProxy(t, srv.URL)
	r := &rig{t: t, st: st, dir: dir, ex: ex, proxy: proxy, ready: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Config{
			Client: api.NewClient(proxy.URL, nil), Name: "a1", Slots: 4, Dir: filepath.Join(dir, "agent"),
			Grace: 200 * time.Millisecond, Ready: func(s string) { r.ready <- s },
		})
	}()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent.Run: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

func (r *rig) session() string {
	r.t.Helper()
	select {
	case s := <-r.ready:
		return s
	case <-time.After(30 * time.Second):
		r.t.Fatal("the agent did not register within 30s")
	}
	return ""
}

var runIDs struct {
	sync.Mutex
	next int64
}

// start starts a shell script on the agent, as the engine would.
func (r *rig) start(script string) (executor.Process, talon.Run) {
	r.t.Helper()
	runIDs.Lock()
	runIDs.next++
	id := runIDs.next
	runIDs.Unlock()
	run := talon.Run{ID: id, Job: "j"}
	p, err := r.ex.Start(r.t.Context(), executor.Spec{
		Run: run, Job: &talon.Job{Name: "j", Command: []string{"sh", "-c", script}},
		Env:       []string{"TALON_RUN_ID=" + strconv.FormatInt(id, 10), "TALON_TOKEN=talon-run.secret-of-this-run"},
		Resources: []executor.Resource{{Path: store.AgentPath("a1"), Units: 1}},
	})
	if err != nil {
		r.t.Fatalf("Start: %v", err)
	}
	return p, run
}

func wait(t *testing.T, p executor.Process) executor.Outcome {
	t.Helper()
	ch := make(chan executor.Outcome, 1)
	go func() { ch <- p.Wait() }()
	select {
	case o := <-ch:
		return o
	case <-time.After(60 * time.Second):
		t.Fatal("the run did not end within 60s")
	}
	return executor.Outcome{}
}

// ticks reads the times a job wrote, one UnixNano per line.
func ticks(t *testing.T, path string) []time.Time {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err == nil {
			out = append(out, time.Unix(0, n))
		}
	}
	return out
}

// ticker is a job that writes the time every 20 ms to file until killed.
func ticker(file string) string {
	return `while :; do date +%s%N >> '` + file + `'; sleep 0.02; done`
}

// TestSelfFence: cut off from the server, the agent's supervisor kills
// its run before the server declares it lost, by the job's own record of
// when it last ran and the store's of when the loss was decided; once the
// server is back, the agent registers a new session.
func TestSelfFence(t *testing.T) {
	const lease = 3 * time.Second
	r := newRig(t, lease)
	first := r.session()
	file := filepath.Join(r.dir, "ticks")
	p, run := r.start(ticker(file))
	// Let it tick, then cut the agent off.
	for len(ticksOrNone(file)) < 5 {
		time.Sleep(20 * time.Millisecond)
	}
	r.proxy.SetDown(true)
	o := wait(t, p)
	if o.Succeeded || !strings.HasPrefix(o.Reason, "lost: agent a1 missed its heartbeats") {
		t.Fatalf("outcome = %+v, want lost", o)
	}
	ts := ticks(t, file)
	last := ts[len(ts)-1]
	rs, err := r.st.AgentRuns(t.Context(), store.AgentRunFilter{IDs: []int64{run.ID}})
	if err != nil {
		t.Fatal(err)
	}
	lost := rs[0].Ended
	t.Logf("the job last ran %s before the server declared it lost", lost.Sub(last).Round(time.Millisecond))
	if !last.Before(lost) {
		t.Errorf("the job ran at %s, after the server declared it lost at %s: a retry could overlap it", last, lost)
	}
	// Nothing of it is left running.
	n := len(ts)
	time.Sleep(200 * time.Millisecond) // ten ticks' time: a live job would have written
	if got := len(ticks(t, file)); got != n {
		t.Errorf("the job wrote %d ticks after it was declared lost", got-n)
	}
	r.proxy.SetDown(false)
	if second := r.session(); second == first {
		t.Errorf("the agent kept session %s after its lease lapsed", first)
	}
}

func ticksOrNone(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// TestReconnect: an agent that reaches the server again within its
// lease keeps its session and its runs, and reports a run that ended
// while it was cut off, with its output and the time it ended.
func TestReconnect(t *testing.T) {
	const lease = 6 * time.Second
	r := newRig(t, lease)
	session := r.session()
	p, run := r.start(`echo "token $TALON_TOKEN"; sleep 1; echo done; exit 3`)
	r.proxy.SetDown(true)
	cut := time.Now()
	time.Sleep(2500 * time.Millisecond) // the run ends meanwhile; the lease holds (5s to fencing)
	r.proxy.SetDown(false)
	o := wait(t, p)
	if o.Succeeded || o.ExitCode != 3 || o.Reason != "exit status 3" {
		t.Errorf("outcome = %+v, want the run's own: exit status 3", o)
	}
	if !o.Ended.Before(cut.Add(2500 * time.Millisecond)) {
		t.Errorf("the run ended at %s by the report, want while the agent was cut off (by %s)", o.Ended, cut.Add(2500*time.Millisecond))
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "server-logs", "j", strconv.FormatInt(run.ID, 10)+".log"))
	if err != nil || string(b) != "token talon-run.secret-of-this-run\ndone\n" {
		t.Errorf("server's log = %q, %v", b, err)
	}
	as, _, err := r.st.Agents(t.Context())
	if err != nil || len(as) != 1 || as[0].Session != session {
		t.Errorf("agents = %+v, %v: want session %s kept", as, err, session)
	}
	select {
	case s := <-r.ready:
		t.Errorf("the agent registered again (%s) though its lease held", s)
	default:
	}
}

// TestShutdown: an agent told to stop stops its runs and reports them.
func TestShutdown(t *testing.T) {
	r := newRig(t, 6*time.Second)
	r.session()
	p, _ := r.start(`sleep 60`)
	r.stop()
	o := wait(t, p)
	if o.Succeeded || o.Reason != "agent a1 shut down" {
		t.Errorf("outcome = %+v", o)
	}
}
