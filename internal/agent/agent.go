// Package agent is the node side of remote execution: `talon agent`
// connects out to a Talon server (no port of its own is open), registers
// itself as the resource hosts/agents/NAME with its slots and labels, and
// runs the runs it is handed with the local executor — its process
// group, its supervisor, its output log, its "::talon" lines — reporting
// each run's start, output and end to the server. The server's side is
// internal/executor/agent; the protocol is api.Agents.
//
// # Sessions and leases
//
// Each start of the agent registers a new session, naming the previous
// one (kept in the agent's directory, which a lock makes the agent's
// own), so the server knows that session's runs died with its process.
// The session holds a lease in the server's database clock, renewed by
// a heartbeat every Lease/3 (the server says both). The agent measures
// its side on its own monotonic clock from the moment it *sent* the last
// heartbeat the server accepted — the database renewed the lease after
// that moment, so the agent's view ends first.
//
// # Self-fencing
//
// When its last accepted heartbeat is Lease - Lease/6 old (the server
// unreachable, the agent frozen), the agent's runs are killed — by their
// supervisor, which keeps that deadline on its own clock (every
// heartbeat moves it: executor.Fencer), so a frozen agent's runs die too
// — Lease/6 before the server may declare them lost and retry them
// elsewhere. A retry therefore never overlaps the original. The agent
// then drops the session, registers a new one and goes on.
//
// An agent that reaches the server again within its lease keeps its
// session: its runs went on, and it reports what they printed and how
// those that ended meanwhile ended.
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/local"
)

// Config is what an agent runs with. Client, Name, Slots and Dir are
// required.
type Config struct {
	// Client talks to the server, with the agent's token and TLS.
	Client *api.Client
	// CAFile is the CA file the agent trusts the server with; its jobs
	// get it as TALON_CA (and the server's URL as TALON_URL).
	CAFile string
	Name   string
	Slots  int
	Labels map[string]string
	// Dir holds the agent's state: its lock, its last session, and the
	// runs' output logs (Dir/logs/JOB/RUN.log).
	Dir    string
	Logger *slog.Logger
	// Grace is how long a cancelled run gets between SIGTERM and SIGKILL
	// (the local executor's default when zero).
	Grace time.Duration
	// Ready, when set, is called each time a session is registered.
	Ready func(session string)
}

// Agent is one agent process.
type Agent struct {
	cfg  Config
	cl   *api.Client
	log  *slog.Logger
	ex   *local.Executor
	host string

	mu      sync.Mutex
	session string
	lease   time.Duration
	fenceAt time.Time // by the monotonic clock: when the runs must be dead
	renewed chan struct{}
	runs    map[int64]*run
}

// errSessionLost ends a session: the agent stops its runs and registers
// again.
var errSessionLost = errors.New("session lost")

// Run runs the agent until ctx ends. It returns an error only for what
// it cannot go on from (its directory is locked, or not writable).
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil || cfg.Name == "" || cfg.Slots < 1 || cfg.Dir == "" {
		return errors.New("agent: Client, Name, Slots and Dir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("agent directory: %w", err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	host, _ := os.Hostname()
	ex := local.New(cfg.Logger)
	ex.Grace = cfg.Grace
	a := &Agent{cfg: cfg, cl: cfg.Client, log: cfg.Logger.With("agent", cfg.Name), ex: ex, host: host, runs: map[int64]*run{}}
	previous := a.readSession()
	for {
		session, err := a.register(ctx, previous)
		if err != nil {
			return nil // ctx ended
		}
		previous = session
		err = a.serve(ctx, session)
		if ctx.Err() != nil {
			a.shutdown(session)
			return nil
		}
		a.log.Warn("session ended; registering again", "session", session, "why", err)
	}
}

// lockDir makes dir this process's: a second agent on it would report
// the runs of the first as its own.
func lockDir(dir string) (func(), error) {
	name := filepath.Join(dir, "agent.lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(name)
			return nil, fmt.Errorf("another talon agent (pid %s) uses %s: give this one its own --dir", strings.TrimSpace(string(b)), dir)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

func (a *Agent) sessionFile() string { return filepath.Join(a.cfg.Dir, "session") }

func (a *Agent) readSession() string {
	b, err := os.ReadFile(a.sessionFile())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func newSession() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// register registers a new session, trying again until the server takes
// it or ctx ends.
func (a *Agent) register(ctx context.Context, previous string) (string, error) {
	session := newSession()
	wait := 500 * time.Millisecond
	for {
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		lease, err := a.cl.RegisterAgent(rctx, a.cfg.Name, api.AgentRegister{
			Session: session, Previous: previous, Slots: a.cfg.Slots, Labels: a.cfg.Labels, Host: a.host, Version: version(),
		})
		cancel()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err == nil {
			// Written before anything runs: should this process die, the
			// next start names this session.
			if err := os.WriteFile(a.sessionFile(), []byte(session+"\n"), 0o600); err != nil {
				a.log.Error("cannot record the session: a restart will wait for its lease to run out", "err", err)
			}
			a.mu.Lock()
			a.session, a.lease = session, time.Duration(lease.LeaseMS)*time.Millisecond
			a.fenceAt = sent.Add(a.lease - a.lease/6)
			a.renewed = make(chan struct{}, 1)
			a.mu.Unlock()
			a.log.Info("registered", "session", session, "slots", a.cfg.Slots, "lease", a.lease, "lost", lease.Lost)
			if a.cfg.Ready != nil {
				a.cfg.Ready(session)
			}
			return session, nil
		}
		var te *talon.Error
		if errors.As(err, &te) && te.Code == talon.EINVALID || errors.As(err, &te) && (te.Code == api.EUNAUTHORIZED || te.Code == api.EFORBIDDEN) {
			a.log.Error("the server refuses this agent; trying again later", "err", err)
			wait = 30 * time.Second
		} else {
			a.log.Warn("register", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// serve runs one session until it is lost (or ctx ends), then stops the
// session's runs.
func (a *Agent) serve(ctx context.Context, session string) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); cancel(a.heartbeats(sctx, session)) }()
	go func() { defer wg.Done(); cancel(a.polls(sctx, session)) }()
	go func() { defer wg.Done(); cancel(a.fence(sctx)) }()
	<-sctx.Done()
	why := context.Cause(sctx)
	// No run is accepted for the session from now on, so stopAll below
	// sees every run it has.
	a.mu.Lock()
	a.session = ""
	a.mu.Unlock()
	if ctx.Err() == nil {
		// Lost: the server is declaring (or declared) this session's runs
		// lost; they must be dead before it retries them.
		a.stopAll(fmt.Sprintf("lost: agent %s lost its session (%v), so it stopped the run", a.cfg.Name, why))
	}
	wg.Wait()
	return why
}

// heartbeats renews the session's lease every Lease/3; while the server
// cannot be reached, every second (at most Lease/5).
func (a *Agent) heartbeats(ctx context.Context, session string) error {
	for {
		a.mu.Lock()
		lease := a.lease
		a.mu.Unlock()
		sent := time.Now()
		hctx, cancel := context.WithTimeout(ctx, lease/3)
		l, err := a.cl.AgentHeartbeat(hctx, a.cfg.Name, api.AgentBeat{Session: session})
		cancel()
		wait := lease / 3
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			a.renew(sent, time.Duration(l.LeaseMS)*time.Millisecond)
			if l.HeartbeatMS > 0 {
				wait = time.Duration(l.HeartbeatMS) * time.Millisecond
			}
		case isConflict(err):
			return fmt.Errorf("%w: %v", errSessionLost, err)
		default:
			a.log.Warn("heartbeat", "err", err)
			wait = min(time.Second, lease/5)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func isConflict(err error) bool {
	var te *talon.Error
	return errors.As(err, &te) && te.Code == talon.ECONFLICT
}

// renew records a heartbeat sent at sent and accepted, and moves every
// run's self-fencing deadline.
func (a *Agent) renew(sent time.Time, lease time.Duration) {
	a.mu.Lock()
	a.lease = lease
	// Heartbeats go one at a time, so this one's deadline is the
	// session's, earlier or later than the last one's (a server may
	// shorten the lease).
	at := sent.Add(lease - lease/6)
	a.fenceAt = at
	rs := a.runList()
	select {
	case a.renewed <- struct{}{}:
	default:
	}
	a.mu.Unlock()
	for _, r := range rs {
		if f, ok := r.process().(executor.Fencer); ok {
			// Measured now, just before it is sent: a process is never
			// given more than the lease has left.
			f.FenceIn(time.Until(at))
		}
	}
}

// fence ends the session when its lease lapses on this clock. The runs'
// supervisor kills them at that moment by itself (FenceIn); this also
// covers an agent that was frozen and wakes past it.
func (a *Agent) fence(ctx context.Context) error {
	for {
		a.mu.Lock()
		left := time.Until(a.fenceAt)
		renewed := a.renewed
		a.mu.Unlock()
		if left <= 0 {
			return fmt.Errorf("%w: could not renew its lease in time", errSessionLost)
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-renewed:
		case <-t.C:
		}
		t.Stop()
	}
}

// fenceLeft is how long a run started now may run without a renewal;
// zero or less: the lease has lapsed.
func (a *Agent) fenceLeft() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Until(a.fenceAt)
}

// polls asks for work, a long poll at a time.
func (a *Agent) polls(ctx context.Context, session string) error {
	wait := time.Duration(0)
	for {
		if wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		known, cancelled := a.known()
		pctx, cancel := context.WithTimeout(ctx, api.MaxAgentWait+15*time.Second)
		w, err := a.cl.AgentPoll(pctx, a.cfg.Name, api.AgentPoll{Session: session, Known: known, Cancelled: cancelled, WaitMS: pollWait.Milliseconds()})
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case isConflict(err):
			return fmt.Errorf("%w: %v", errSessionLost, err)
		case err != nil:
			a.log.Warn("poll", "err", err)
			wait = time.Second
			continue
		}
		wait = 0
		for _, spec := range w.Runs {
			a.accept(ctx, session, spec)
		}
		for _, c := range w.Cancel {
			a.cancel(c)
		}
	}
}

// pollWait is how long the server may hold a poll without work.
const pollWait = 20 * time.Second

func (a *Agent) runList() []*run {
	out := make([]*run, 0, len(a.runs))
	for _, r := range a.runs {
		out = append(out, r)
	}
	return out
}

// known lists the runs this agent has, and those of them it stopped for
// a cancel.
func (a *Agent) known() (known, cancelled []int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, r := range a.runs {
		known = append(known, id)
		if r.wasCancelled() {
			cancelled = append(cancelled, id)
		}
	}
	slices.Sort(known)
	slices.Sort(cancelled)
	return known, cancelled
}

// logPath is where a run's output is kept on this node: by job and run
// id, never a path the server sent.
func (a *Agent) logPath(spec api.AgentRunSpec) string {
	return filepath.Join(a.cfg.Dir, "logs", filepath.Base(filepath.Clean("/"+spec.Job)), strconv.FormatInt(spec.Run, 10)+".log")
}

// env is the run's environment as the server sent it, with the address
// jobs reach the server at: the agent's own (TALON_URL, TALON_CA).
func (a *Agent) env(spec api.AgentRunSpec) []string {
	out := make([]string, 0, len(spec.Env)+2)
	for _, kv := range spec.Env {
		if strings.HasPrefix(kv, "TALON_URL=") || strings.HasPrefix(kv, "TALON_CA=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "TALON_URL="+a.cl.BaseURL())
	if a.cfg.CAFile != "" {
		out = append(out, "TALON_CA="+a.cfg.CAFile)
	}
	return out
}

// accept takes a run handed to this session: it is known from now on
// (the next poll says so), and starts off the poll loop.
func (a *Agent) accept(ctx context.Context, session string, spec api.AgentRunSpec) {
	a.mu.Lock()
	if a.runs[spec.Run] != nil || a.session != session {
		a.mu.Unlock()
		return
	}
	r := &run{a: a, id: spec.Run, job: spec.Job, session: session, logPath: a.logPath(spec), wake: make(chan struct{}, 1), done: make(chan struct{})}
	a.runs[spec.Run] = r
	a.mu.Unlock()
	go r.reports(ctx)
	go a.launch(ctx, r, spec)
}

// launch starts a run's process with the local executor.
func (a *Agent) launch(ctx context.Context, r *run, spec api.AgentRunSpec) {
	left := a.fenceLeft()
	if left <= 0 {
		r.end(executor.Outcome{ExitCode: -1, Reason: fmt.Sprintf("agent %s's lease lapsed before the run could start", a.cfg.Name)}, false)
		return
	}
	s := executor.Spec{
		Run:     talon.Run{ID: spec.Run, Job: spec.Job, Created: time.Now()},
		Job:     &talon.Job{Name: spec.Job, Command: spec.Command, Dir: spec.Dir},
		Env:     a.env(spec),
		LogPath: r.logPath,
		Secrets: spec.Secrets,
		FenceIn: left,
		OnLine:  func(string) { r.poke() },
	}
	p, err := a.ex.Start(context.WithoutCancel(ctx), s)
	if err != nil {
		r.end(executor.Outcome{ExitCode: -1, Reason: err.Error()}, false)
		return
	}
	r.setProcess(p)
	a.log.Info("run started", "run", spec.Run, "job", spec.Job, "pid", r.pid())
	o := p.Wait()
	if strings.HasPrefix(o.Reason, "lost: its scheduler's lease expired") {
		o.Reason = fmt.Sprintf("lost: agent %s could not renew its lease, so its supervisor killed the run before the server could retry it", a.cfg.Name)
	}
	r.end(o, true)
}

// cancel stops a run the server asked to stop.
func (a *Agent) cancel(c api.AgentCancel) {
	a.mu.Lock()
	r := a.runs[c.Run]
	a.mu.Unlock()
	if r != nil {
		r.cancel(c.Reason)
	}
}

// stopAll stops every run of the session and waits until they have
// ended (their supervisor kills them at once when the lease lapsed).
func (a *Agent) stopAll(reason string) {
	a.mu.Lock()
	rs := a.runList()
	a.mu.Unlock()
	for _, r := range rs {
		r.cancel(reason)
	}
	for _, r := range rs {
		<-r.done
	}
	a.mu.Lock()
	for _, r := range rs {
		delete(a.runs, r.id)
	}
	a.mu.Unlock()
}

// shutdown stops the runs when the agent is told to stop, and reports
// their ends while the session still holds (bounded).
func (a *Agent) shutdown(session string) {
	a.mu.Lock()
	rs := a.runList()
	a.mu.Unlock()
	if len(rs) == 0 {
		return
	}
	a.log.Info("shutting down: stopping runs", "runs", len(rs))
	for _, r := range rs {
		r.cancel(fmt.Sprintf("agent %s shut down", a.cfg.Name))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, r := range rs {
		select {
		case <-r.done:
		case <-ctx.Done():
		}
		// The reporter stopped with the agent's context: report once more.
		r.flush(ctx)
	}
}

// run is one run on this agent.
type run struct {
	a       *Agent
	id      int64
	job     string
	session string
	logPath string
	wake    chan struct{}
	done    chan struct{} // closed when the process ended

	mu        sync.Mutex
	p         executor.Process
	cancelled bool
	outcome   *executor.Outcome
	endedAt   time.Time
	started   bool // the start was reported (or there was none)
	sent      int64
	reported  bool // the end was reported, or the server took it already
}

func (r *run) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *run) process() executor.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

func (r *run) setProcess(p executor.Process) {
	r.mu.Lock()
	r.p = p
	cancelled := r.cancelled
	r.mu.Unlock()
	if cancelled {
		p.Cancel(errors.New("cancelled before it started"))
	}
	r.poke()
}

// pid is the run's process id, from the local executor's handle.
func (r *run) pid() int {
	p := r.process()
	if p == nil {
		return 0
	}
	h, _, _ := strings.Cut(strings.TrimPrefix(p.Handle(), "pid:"), " ")
	n, _ := strconv.Atoi(h)
	return n
}

func (r *run) wasCancelled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancelled
}

func (r *run) cancel(reason string) {
	r.mu.Lock()
	if r.cancelled {
		r.mu.Unlock()
		return
	}
	r.cancelled = true
	p := r.p
	r.mu.Unlock()
	if p != nil {
		p.Cancel(errors.New(reason))
	}
}

// end records how the run ended; started says whether it had a process.
func (r *run) end(o executor.Outcome, started bool) {
	r.mu.Lock()
	if r.outcome == nil {
		r.outcome, r.endedAt = &o, time.Now()
		if !started {
			r.started = true // nothing to report
		}
		close(r.done)
	}
	r.mu.Unlock()
	r.a.log.Info("run ended", "run", r.id, "reason", o.Reason)
	r.poke()
}

// reports sends the run's start, output and end to the server as they
// come, each report again until the server takes it.
func (r *run) reports(ctx context.Context) {
	for {
		sent, err := r.report(ctx)
		if r.isReported() {
			r.a.mu.Lock()
			if r.a.runs[r.id] == r {
				delete(r.a.runs, r.id)
			}
			r.a.mu.Unlock()
			return
		}
		wait := time.Duration(0)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && isConflict(err):
			// The session is gone: serve() stops the runs.
			r.a.log.Warn("report refused", "run", r.id, "err", err)
			return
		case err != nil:
			r.a.log.Warn("report", "run", r.id, "err", err)
			wait = time.Second
		case !sent:
			// Nothing new, or a line not yet ended: wait for the next
			// line or the end.
			wait = time.Second
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (r *run) isReported() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reported
}

// flush reports until done or ctx ends.
func (r *run) flush(ctx context.Context) {
	for !r.isReported() && ctx.Err() == nil {
		if _, err := r.report(ctx); err != nil {
			if isConflict(err) {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// report sends what the server lacks: the start, output, the end. It
// returns whether it sent anything.
func (r *run) report(ctx context.Context) (bool, error) {
	r.mu.Lock()
	rep := api.AgentReport{Session: r.session}
	if !r.started && r.p != nil {
		rep.Started = &api.AgentStarted{PID: 0}
	}
	ended := r.outcome != nil
	sent := r.sent
	r.mu.Unlock()
	if rep.Started != nil {
		rep.Started.PID = r.pid()
	}
	data, whole, err := readFrom(r.logPath, sent, api.MaxAgentOutput, ended)
	if err != nil {
		r.a.log.Warn("read the run's log", "run", r.id, "err", err)
	}
	if len(data) > 0 {
		rep.Output = &api.AgentOutput{Offset: sent, Data: data}
	}
	if ended && whole {
		r.mu.Lock()
		o := *r.outcome
		rep.Ended = &api.AgentEnded{Succeeded: o.Succeeded, ExitCode: o.ExitCode, Reason: o.Reason, AgoMS: time.Since(r.endedAt).Milliseconds()}
		r.mu.Unlock()
	}
	if rep.Started == nil && rep.Output == nil && rep.Ended == nil {
		return false, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ans, err := r.a.cl.AgentReport(rctx, r.a.cfg.Name, r.id, rep)
	cancel()
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rep.Started != nil {
		r.started = true
	}
	if rep.Output != nil {
		// The server's word: it may ask for output again from an earlier
		// offset (its store lacked it).
		r.sent = min(ans.Output, rep.Output.Offset+int64(len(rep.Output.Data)))
	}
	if rep.Ended != nil {
		r.reported = true
	}
	if ans.Stop != "" {
		// The server ended the run on its side (withdrawn, lost): stop it
		// and forget it once it ended.
		p := r.p
		r.cancelled = true
		if p != nil {
			go p.Cancel(errors.New(ans.Stop))
		}
		if r.outcome != nil {
			r.reported = true
		}
	}
	return true, nil
}

// readFrom reads the log from off: at most limit bytes, up to the last
// newline unless the output has ended (then all of it). whole reports
// that it read to the end of an ended output.
func readFrom(path string, off int64, limit int, ended bool) (data []byte, whole bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ended, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	buf := make([]byte, limit)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	buf = buf[:n]
	if ended {
		return buf, n < limit, nil
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		return buf[:i+1], false, nil
	}
	if n == limit {
		return buf, false, nil // one line longer than a report: cut
	}
	return nil, false, nil
}
