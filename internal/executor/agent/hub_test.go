package agent_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/executor"
	agentexec "github.com/talonhq/talon/internal/executor/agent"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
)

// These tests play the agent's side of the protocol by hand against the
// executor (api.Agents) over a real store, to break what a real agent
// does not: reports sent twice, another session's reports, an agent
// that never takes a run or stops heartbeating.

func logPath(dir string, r talon.Run) string {
	return filepath.Join(dir, "logs", filepath.Base(r.Job), strconv.FormatInt(r.ID, 10)+".log")
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

type fixture struct {
	t   *testing.T
	st  store.Store
	dir string
	ex  *agentexec.Executor
}

func newFixture(t *testing.T, cfg agentexec.Config) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	if cfg.Poll == 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	cfg.LogPath = func(r talon.Run) string { return logPath(dir, r) }
	ex, err := agentexec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return &fixture{t: t, st: st, dir: dir, ex: ex}
}

func (f *fixture) register(name, session string) api.AgentLease {
	f.t.Helper()
	l, err := f.ex.Register(f.t.Context(), name, "test", api.AgentRegister{Session: session, Slots: 2})
	if err != nil {
		f.t.Fatalf("register %s/%s: %v", name, session, err)
	}
	return l
}

// spec is a run of job "j" on agent name, a run of the store.
func (f *fixture) spec(name string, lines *lineLog) executor.Spec {
	f.t.Helper()
	cs, err := f.st.CreateRuns(f.t.Context(), []store.CreateRun{{Job: "j", Period: "daily/2026-11-26", Trigger: "api",
		Key: strconv.FormatInt(time.Now().UnixNano(), 10), Executor: "agent", Now: time.Now()}})
	if err != nil {
		f.t.Fatal(err)
	}
	r := cs[0].Run
	s := executor.Spec{Run: r, Job: &talon.Job{Name: "j", Command: []string{"true"}},
		Env: []string{"TALON_RUN_ID=1"}, LogPath: logPath(f.dir, r),
		Resources: []executor.Resource{{Path: store.AgentPath(name), Units: 1}}}
	if lines != nil {
		s.OnLine = lines.add
	}
	return s
}

type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *lineLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

type started struct {
	p   executor.Process
	err error
}

// start starts s in the background: Start returns once the agent
// reports the start.
func (f *fixture) start(s executor.Spec) <-chan started {
	ch := make(chan started, 1)
	go func() {
		p, err := f.ex.Start(context.Background(), s)
		ch <- started{p, err}
	}()
	return ch
}

// poll polls until the agent gets work.
func (f *fixture) poll(name, session string, known ...int64) api.AgentWork {
	f.t.Helper()
	w, err := f.ex.Poll(f.t.Context(), name, api.AgentPoll{Session: session, Known: known, WaitMS: 10_000})
	if err != nil {
		f.t.Fatalf("poll: %v", err)
	}
	return w
}

func (f *fixture) report(name string, run int64, rep api.AgentReport) api.AgentReported {
	f.t.Helper()
	a, err := f.ex.Report(f.t.Context(), name, run, rep)
	if err != nil {
		f.t.Fatalf("report %d: %v", run, err)
	}
	return a
}

func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("nothing within 30s")
	}
	var zero T
	return zero
}

func waitOutcome(t *testing.T, p executor.Process) executor.Outcome {
	t.Helper()
	ch := make(chan executor.Outcome, 1)
	go func() { ch <- p.Wait() }()
	return waitFor(t, ch)
}

// TestReports: a report sent again appends nothing twice, each line
// reaches OnLine once, and the end comes after all the output.
func TestReports(t *testing.T) {
	f := newFixture(t, agentexec.Config{})
	f.register("a1", "s1")
	var lines lineLog
	s := f.spec("a1", &lines)
	res := f.start(s)
	w := f.poll("a1", "s1")
	if len(w.Runs) != 1 || w.Runs[0].Run != s.Run.ID || w.Runs[0].Job != "j" {
		t.Fatalf("work = %+v", w)
	}
	// The answer was lost: the run is handed again to an agent that
	// does not know it, and not to one that does.
	if w := f.poll("a1", "s1"); len(w.Runs) != 1 {
		t.Errorf("work again = %+v, want the run again", w)
	}
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Started: &api.AgentStarted{PID: 4242}})
	st := waitFor(t, res)
	if st.err != nil {
		t.Fatal(st.err)
	}
	if h := st.p.Handle(); h != "agent:a1 pid:4242" {
		t.Errorf("handle = %q", h)
	}
	out := []string{"one\n::talon progress 50%\n", "one\n::talon progress 50%\nthree\n"}
	if a := f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Output: &api.AgentOutput{Offset: 0, Data: []byte(out[0])}}); a.Output != int64(len(out[0])) {
		t.Errorf("server has %d bytes, want %d", a.Output, len(out[0]))
	}
	// Sent again from offset 0 with more: only the rest is new.
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Output: &api.AgentOutput{Offset: 0, Data: []byte(out[1])}})
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Output: &api.AgentOutput{Offset: int64(len(out[1])), Data: []byte("last, no newline")},
		Ended: &api.AgentEnded{Succeeded: false, ExitCode: 3, Reason: "exit status 3", AgoMS: 10}})
	o := waitOutcome(t, st.p)
	if o.Succeeded || o.ExitCode != 3 || o.Reason != "exit status 3" || o.Ended.IsZero() {
		t.Errorf("outcome = %+v", o)
	}
	want := out[1] + "last, no newline"
	if b, _ := os.ReadFile(s.LogPath); string(b) != want {
		t.Errorf("log file = %q, want %q", b, want)
	}
	if b, err := f.st.ReadLog(t.Context(), s.Run.ID, 0, 1<<20); err != nil || string(b) != want {
		t.Errorf("stored log = %q, %v; want %q", b, err, want)
	}
	if got, want := strings.Join(lines.get(), "|"), "one|::talon progress 50%|three|last, no newline"; got != want {
		t.Errorf("OnLine = %q, want %q", got, want)
	}
	// A late report of the ended run changes nothing.
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Ended: &api.AgentEnded{Succeeded: true}})
	if rs, _ := f.st.AgentRuns(t.Context(), store.AgentRunFilter{IDs: []int64{s.Run.ID}}); rs[0].Succeeded {
		t.Error("a second end replaced the first")
	}
}

// TestSessions: a session that is not the agent's live one gets
// conflicts, so that agent stops its runs and registers again.
func TestSessions(t *testing.T) {
	f := newFixture(t, agentexec.Config{})
	l := f.register("a1", "s1")
	if l.LeaseMS != agentexec.DefaultLease.Milliseconds() || l.HeartbeatMS != l.LeaseMS/3 {
		t.Errorf("lease = %+v", l)
	}
	ctx := t.Context()
	conflict := func(what string, err error) {
		t.Helper()
		var te *talon.Error
		if !errors.As(err, &te) || te.Code != talon.ECONFLICT {
			t.Errorf("%s = %v, want a conflict", what, err)
		}
	}
	_, err := f.ex.Register(ctx, "a1", "test", api.AgentRegister{Session: "other", Slots: 1})
	conflict("a second process under the name", err)
	if err == nil || !strings.HasPrefix(err.Error(), "register agent a1: agent a1 is already connected (session s1 from an unknown host, last heartbeat 0s ago;") ||
		!strings.HasSuffix(err.Error(), "stop it, or give this one another --name") {
		t.Errorf("the conflict says %q", err)
	}
	_, err = f.ex.Heartbeat(ctx, "a1", api.AgentBeat{Session: "other"})
	conflict("heartbeat of another session", err)
	_, err = f.ex.Poll(ctx, "a1", api.AgentPoll{Session: "other"})
	conflict("poll of another session", err)
	if _, err := f.ex.Heartbeat(ctx, "a1", api.AgentBeat{Session: "s1"}); err != nil {
		t.Errorf("heartbeat: %v", err)
	}
	s := f.spec("a1", nil)
	res := f.start(s)
	f.poll("a1", "s1")
	_, err = f.ex.Report(ctx, "a1", s.Run.ID, api.AgentReport{Session: "other", Started: &api.AgentStarted{PID: 1}})
	conflict("a report of another session", err)
	_, err = f.ex.Report(ctx, "a2", s.Run.ID, api.AgentReport{Session: "s1", Started: &api.AgentStarted{PID: 1}})
	conflict("a report under another agent's name", err)
	// The agent restarts: its new session names the old one, whose run
	// is lost at once.
	l = f.register2("a1", "s2", "s1")
	if len(l.Lost) != 1 || l.Lost[0] != s.Run.ID {
		t.Errorf("lost = %v, want run %d", l.Lost, s.Run.ID)
	}
	if st := waitFor(t, res); st.err == nil || !strings.Contains(st.err.Error(), "registered again") {
		t.Errorf("Start = %v, want the run lost with its session", st.err)
	}
	for _, bad := range []string{"a/b", "", "-x"} {
		var te *talon.Error
		if _, err := f.ex.Register(ctx, bad, "test", api.AgentRegister{Session: "s", Slots: 1}); !errors.As(err, &te) || te.Code != talon.EINVALID {
			t.Errorf("register %q = %v, want invalid", bad, err)
		}
	}
}

func (f *fixture) register2(name, session, previous string) api.AgentLease {
	f.t.Helper()
	l, err := f.ex.Register(f.t.Context(), name, "test", api.AgentRegister{Session: session, Previous: previous, Slots: 2})
	if err != nil {
		f.t.Fatalf("register %s/%s: %v", name, session, err)
	}
	return l
}

// TestNotTaken: a run its agent does not take in time is withdrawn and
// fails to start; a run for an agent that is not connected fails at once.
func TestNotTaken(t *testing.T) {
	f := newFixture(t, agentexec.Config{TakeTimeout: 100 * time.Millisecond})
	if _, err := f.ex.Start(t.Context(), f.spec("nobody", nil)); err == nil || err.Error() != "agent nobody is not connected" {
		t.Errorf("Start on an unknown agent = %v", err)
	}
	s := f.spec("nobody", nil)
	s.Resources = nil
	if _, err := f.ex.Start(t.Context(), s); err == nil || !strings.Contains(err.Error(), "holds no hosts/agents/NAME") {
		t.Errorf("Start without an agent = %v", err)
	}
	f.register("a1", "s1")
	st := waitFor(t, f.start(f.spec("a1", nil)))
	if st.err == nil || !strings.Contains(st.err.Error(), "agent a1 did not take the run within 100ms") {
		t.Errorf("Start = %v, want it withdrawn", st.err)
	}
	if w, err := f.ex.Poll(t.Context(), "a1", api.AgentPoll{Session: "s1"}); err != nil || len(w.Runs) != 0 {
		t.Errorf("the agent still gets the withdrawn run: %+v, %v", w, err)
	}
}

// TestLost: an agent that stops heartbeating has its runs declared lost
// within its lease (and a look), by the database's clock.
func TestLost(t *testing.T) {
	const lease = time.Second
	f := newFixture(t, agentexec.Config{Lease: lease})
	f.register("a1", "s1")
	s := f.spec("a1", nil)
	res := f.start(s)
	f.poll("a1", "s1")
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Started: &api.AgentStarted{PID: 7}})
	st := waitFor(t, res)
	if st.err != nil {
		t.Fatal(st.err)
	}
	begun := time.Now()
	o := waitOutcome(t, st.p)
	took := time.Since(begun)
	if o.Succeeded || !strings.HasPrefix(o.Reason, "lost: agent a1 missed its heartbeats") {
		t.Errorf("outcome = %+v, want lost", o)
	}
	if took > lease+time.Second {
		t.Errorf("declared lost %s after the last heartbeat, want within the lease %s and a look", took, lease)
	}
	t.Logf("lost after %s: %s", took.Round(time.Millisecond), o.Reason)
	if _, err := f.ex.Heartbeat(t.Context(), "a1", api.AgentBeat{Session: "s1"}); err == nil {
		t.Error("the lost session renewed its lease")
	}
	a := f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Output: &api.AgentOutput{Data: []byte("late\n")}})
	if a.Stop == "" {
		t.Errorf("a report of a lost run = %+v, want the agent told to stop it", a)
	}
}

// TestRecoverAndDetach: a scheduler shutting down detaches its agent
// runs; a new one re-attaches and gets their outcome.
func TestRecoverAndDetach(t *testing.T) {
	f := newFixture(t, agentexec.Config{})
	f.register("a1", "s1")
	s := f.spec("a1", nil)
	res := f.start(s)
	f.poll("a1", "s1")
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Started: &api.AgentStarted{PID: 9}})
	st := waitFor(t, res)
	if st.err != nil {
		t.Fatal(st.err)
	}
	d, ok := st.p.(executor.Detacher)
	if !ok {
		t.Fatalf("%T is not a Detacher", st.p)
	}
	d.Detach()
	handle := st.p.Handle()

	other, err := agentexec.New(agentexec.Config{Store: f.st, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	p, err := other.Recover(t.Context(), s.Run, handle)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Ended: &api.AgentEnded{Succeeded: true, Reason: "exit status 0"}})
	if o := waitOutcome(t, p); !o.Succeeded {
		t.Errorf("re-attached outcome = %+v", o)
	}
	// Recovered again once it ended: its outcome at once.
	p, err = other.Recover(t.Context(), s.Run, "")
	if err != nil || !waitOutcome(t, p).Succeeded {
		t.Errorf("Recover of the ended run = %v", err)
	}
	// A run never handed to an agent is lost.
	if _, err := other.Recover(t.Context(), talon.Run{ID: 999999}, "agent"); !errors.Is(err, executor.ErrLost) {
		t.Errorf("Recover of a run never handed = %v, want ErrLost", err)
	}
}

// TestCancel: a cancel reaches the agent's poll, once.
func TestCancel(t *testing.T) {
	f := newFixture(t, agentexec.Config{})
	f.register("a1", "s1")
	s := f.spec("a1", nil)
	res := f.start(s)
	f.poll("a1", "s1")
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Started: &api.AgentStarted{PID: 9}})
	st := waitFor(t, res)
	st.p.Cancel(errors.New("cancelled by alice"))
	w := f.poll("a1", "s1", s.Run.ID)
	if len(w.Cancel) != 1 || w.Cancel[0].Run != s.Run.ID || w.Cancel[0].Reason != "cancelled by alice" || len(w.Runs) != 0 {
		t.Fatalf("work = %+v, want the cancel", w)
	}
	// An agent that acted on it is not told again.
	if w, err := f.ex.Poll(t.Context(), "a1", api.AgentPoll{Session: "s1", Known: []int64{s.Run.ID}, Cancelled: []int64{s.Run.ID}}); err != nil || len(w.Cancel) != 0 {
		t.Errorf("work after the cancel = %+v, %v", w, err)
	}
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Ended: &api.AgentEnded{ExitCode: -1, Reason: "cancelled by alice"}})
	if o := waitOutcome(t, st.p); o.Succeeded || o.Reason != "cancelled by alice" {
		t.Errorf("outcome = %+v", o)
	}
}

// TestLogLimit: the log store keeps the first LogLimit bytes and a note
// saying where the rest is; the agent goes on sending, storing nothing.
func TestLogLimit(t *testing.T) {
	f := newFixture(t, agentexec.Config{LogLimit: 10})
	f.register("a1", "s1")
	s := f.spec("a1", nil)
	res := f.start(s)
	f.poll("a1", "s1")
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Started: &api.AgentStarted{PID: 1}})
	st := waitFor(t, res)
	for i, piece := range []string{"0123456\n", "789abcdef\n", "more\n"} {
		off := []int64{0, 8, 18}[i]
		if a := f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Output: &api.AgentOutput{Offset: off, Data: []byte(piece)}}); a.Output != off+int64(len(piece)) {
			t.Errorf("piece %d: server has %d, want %d", i, a.Output, off+int64(len(piece)))
		}
	}
	f.report("a1", s.Run.ID, api.AgentReport{Session: "s1", Ended: &api.AgentEnded{Succeeded: true}})
	waitOutcome(t, st.p)
	b, err := f.st.ReadLog(t.Context(), s.Run.ID, 0, 1<<20)
	if err != nil || !strings.HasPrefix(string(b), "0123456\n78\n[talon: this run's output passed 10 bytes; the state store keeps no more of it; the whole output is on agent a1, in its directory's logs/j/") {
		t.Errorf("stored log = %q, %v", b, err)
	}
	if b, _ := os.ReadFile(s.LogPath); string(b) != "0123456\n789abcdef\nmore\n" {
		t.Errorf("log file = %q: want all of it", b)
	}
}
