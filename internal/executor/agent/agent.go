// Package agent is the executor of runs on remote agents (executor:
// agent) and the server's side of the agent protocol (api.Agents): a
// node running `talon agent` connects out to the API, registers itself
// as the resource hosts/agents/NAME, and runs what it is handed with the
// local executor's semantics (internal/agent is that side).
//
// The state store is the only channel between the two sides: Start hands
// a run to the agent holding the run's allocated hosts/agents/NAME by
// writing it to the store (store.OfferAgentRun); the agent's long poll,
// answered by whichever scheduler it is connected to, takes it; its
// reports move it to started and ended; and the process Start returned
// learns of those moves by reading the store. So a run is watched the
// same way whether the agent talks to the scheduler that started the run
// or another one sharing its database, and a restarted scheduler
// re-attaches to a run by its id alone (Recover).
//
// Leases: an agent's session holds a lease in the database's clock
// (Lease, 15 seconds by default), renewed by its heartbeat every Lease/3.
// When it runs out, the store ends the session's runs lost
// (store.ExpireAgentRuns, which the executor calls at every look) and
// the engine records them failed, frees their resources and retries
// them. The agent stops its runs itself before that moment (its
// supervisor kills them when its last renewal is Lease - Lease/6 old, on
// its own monotonic clock), so a retry never overlaps the original.
//
// Processes of this executor outlive their scheduler (executor.Detacher):
// a scheduler that shuts down leaves them to the one that recovers them.
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/store"
)

// Defaults of Config.
const (
	// DefaultLease is how long an agent's session lives without a
	// heartbeat: a dead agent's runs are declared lost within it (plus
	// one Poll). Agents heartbeat every Lease/3.
	DefaultLease = 15 * time.Second
	// DefaultPoll is how often the executor looks at its runs in the
	// store when nothing woke it (a report to another scheduler, a lease
	// running out).
	DefaultPoll = time.Second
	// MinLease and MaxLease bound Lease.
	MinLease = time.Second
	MaxLease = 10 * time.Minute
)

// agentStore is what the executor needs of the state store.
type agentStore interface {
	executor.LogStore
	GetRun(ctx context.Context, id int64) (talon.Run, error)
	RegisterAgent(ctx context.Context, a store.Agent, previous string, lease time.Duration) (store.Agent, []store.AgentRun, error)
	RenewAgent(ctx context.Context, name, session string, lease time.Duration) (store.Agent, error)
	Agents(ctx context.Context) ([]store.Agent, time.Time, error)
	OfferAgentRun(ctx context.Context, r store.AgentRun) (store.AgentRun, error)
	TakeAgentRuns(ctx context.Context, agent, session string, ids []int64) ([]store.AgentRun, error)
	StartAgentRun(ctx context.Context, runID int64, session string, pid int) (store.AgentRun, error)
	EndAgentRun(ctx context.Context, runID int64, session string, o store.AgentOutcome) (store.AgentRun, error)
	CancelAgentRun(ctx context.Context, runID int64, reason string) (store.AgentRun, error)
	WithdrawAgentRun(ctx context.Context, runID int64, reason string) (store.AgentRun, error)
	ExpireAgentRuns(ctx context.Context) ([]store.AgentRun, error)
	AgentRuns(ctx context.Context, f store.AgentRunFilter) ([]store.AgentRun, error)
}

var _ agentStore = store.Store(nil)

// Config is what an Executor is built from. Store is required.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// Lease is the lease of an agent's session (DefaultLease when zero).
	Lease time.Duration
	// Poll is how often the store is looked at (DefaultPoll when zero).
	Poll time.Duration
	// TakeTimeout bounds how long a run handed to an agent may wait for
	// the agent to take it; then it is withdrawn and fails to start
	// (Lease when zero).
	TakeTimeout time.Duration
	// LogPath is where a copy of a run's output goes on this server (the
	// log store, the state store, has it too); nil: no copy.
	LogPath func(talon.Run) string
	// LogLimit is how much of a run's output the log store keeps
	// (executor.DefaultLogLimit when zero), as Spec.LogLimit.
	LogLimit int64
	// Changed is called when an agent registered a session: its node's
	// capacity changed, so runs waiting for resources should be checked.
	Changed func()
}

// Executor runs jobs on agents and serves the agents' protocol.
type Executor struct {
	cfg Config
	st  agentStore
	log *slog.Logger

	mu       sync.Mutex
	watched  map[int64]*process
	watching bool
	closed   bool
	wake     chan struct{} // wakes the watcher
	stop     chan struct{} // closed by Close

	signals signals // wakes an agent's long polls
	reports reportLocks
}

var (
	_ executor.Executor   = (*Executor)(nil)
	_ executor.Locator    = (*Executor)(nil)
	_ executor.Reattacher = (*Executor)(nil)
	_ api.Agents          = (*Executor)(nil)
)

// New returns an executor over cfg.Store.
func New(cfg Config) (*Executor, error) {
	if cfg.Store == nil {
		return nil, errors.New("agent executor: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < MinLease || cfg.Lease > MaxLease {
		return nil, fmt.Errorf("agent lease %s: want %s to %s", cfg.Lease, MinLease, MaxLease)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.TakeTimeout <= 0 {
		cfg.TakeTimeout = cfg.Lease
	}
	return &Executor{
		cfg: cfg, st: cfg.Store, log: cfg.Logger,
		watched: map[int64]*process{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}, nil
}

// Lease is the lease of agents' sessions.
func (x *Executor) Lease() time.Duration { return x.cfg.Lease }

// Close stops watching: processes not yet ended are left to whichever
// scheduler recovers them, and their Wait does not return.
func (x *Executor) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.closed {
		x.closed = true
		close(x.stop)
	}
	return nil
}

// agentOf is the agent a run was allocated: the node under
// store.AgentNamespace among its holds.
func agentOf(s executor.Spec) (string, error) {
	var names []string
	for _, h := range s.Resources {
		if name, ok := store.AgentOf(h.Path); ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", fmt.Errorf("the run holds no %s/NAME resource: give job %s resources: {%s/*: 1}", store.AgentNamespace, s.Job.Name, store.AgentNamespace)
	}
	return "", fmt.Errorf("the run holds %d agents (%s): an agent run goes to one", len(names), strings.Join(names, ", "))
}

// runSpec is what the agent needs to start the run: the job's literal
// env (sorted, as the local executor orders it), then the run's
// (secrets and TALON_*).
func runSpec(s executor.Spec) api.AgentRunSpec {
	env := make([]string, 0, len(s.Job.Env)+len(s.Env))
	for _, k := range slices.Sorted(maps.Keys(s.Job.Env)) {
		if v := s.Job.Env[k]; !v.Secret() {
			env = append(env, k+"="+v.Value)
		}
	}
	env = append(env, s.Env...)
	return api.AgentRunSpec{Run: s.Run.ID, Job: s.Job.Name, Command: s.Job.Command, Dir: s.Job.Dir, Env: env, Secrets: s.Secrets}
}

// Start hands the run to the agent its allocation names, and returns once
// the agent has started its process (or reported it could not: the error
// says why). A run the agent does not take within TakeTimeout is
// withdrawn; one whose agent is gone before it starts fails with the
// store's "lost: …" reason.
func (x *Executor) Start(ctx context.Context, s executor.Spec) (executor.Process, error) {
	if s.Job == nil || len(s.Job.Command) == 0 || s.Job.Command[0] == "" {
		return nil, errors.New("start: job has no command")
	}
	name, err := agentOf(s)
	if err != nil {
		return nil, err
	}
	spec, err := json.Marshal(runSpec(s))
	if err != nil {
		return nil, fmt.Errorf("encode the run for agent %s: %w", name, err)
	}
	p := x.newProcess(s.Run.ID, name)
	p.onLine = s.OnLine
	if !x.watch(p) {
		return nil, errors.New("agent executor closed")
	}
	ar, err := x.st.OfferAgentRun(ctx, store.AgentRun{RunID: s.Run.ID, Agent: name, Job: s.Job.Name, Spec: spec})
	if err != nil {
		x.unwatch(p)
		if errors.Is(err, store.ErrConflict) {
			// "hand run N to agent NAME: agent NAME is not connected"
			_, why, _ := strings.Cut(plain(err), ": ")
			return nil, errors.New(why)
		}
		return nil, err
	}
	p.session = ar.Session
	x.signals.wake(name)
	select {
	case <-p.started:
		return p, nil
	case <-p.done:
		// Ended before it started: the agent could not start it, it
		// was withdrawn, or its agent was lost.
		return nil, errors.New(p.outcome.Reason)
	case <-x.stop:
		return nil, errors.New("agent executor closed")
	}
}

// Locate is for a run whose scheduler died before it recorded the run's
// handle: the store knows the run by its id alone, so any handle does.
func (x *Executor) Locate(run talon.Run, logPath string) string { return "agent" }

// Recover re-attaches to a run handed to an agent: one that ended meanwhile
// comes back with its outcome at once, one still open is watched again,
// and one whose agent is gone is lost (its agent stopped it before its
// lease ran out).
func (x *Executor) Recover(ctx context.Context, run talon.Run, handle string) (executor.Process, error) {
	return x.recoverRun(ctx, run, nil)
}

// Reattach is Recover for a scheduler that follows the run's output
// (s.OnLine) from now on, from the end of its stored log: the lines
// stored before were handed on by the scheduler that started the run.
func (x *Executor) Reattach(ctx context.Context, s executor.Spec, handle string) (executor.Process, error) {
	return x.recoverRun(ctx, s.Run, s.OnLine)
}

func (x *Executor) recoverRun(ctx context.Context, run talon.Run, onLine func(string)) (executor.Process, error) {
	if _, err := x.st.ExpireAgentRuns(ctx); err != nil {
		return nil, fmt.Errorf("recover run %d: %w", run.ID, err)
	}
	rs, err := x.st.AgentRuns(ctx, store.AgentRunFilter{IDs: []int64{run.ID}})
	if err != nil {
		return nil, fmt.Errorf("recover run %d: %w", run.ID, err)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: its scheduler died before it handed the run to an agent", executor.ErrLost)
	}
	ar := rs[0]
	p := x.newProcess(run.ID, ar.Agent)
	p.session = ar.Session
	if !ar.Started.IsZero() {
		p.markStarted(ar.PID)
	}
	if !ar.Open() {
		if ar.Started.IsZero() {
			return nil, fmt.Errorf("%w: %s", executor.ErrLost, strings.TrimPrefix(ar.Reason, "lost: "))
		}
		p.finish(outcomeOf(ar))
		return p, nil
	}
	if onLine != nil {
		size, err := x.st.LogSize(ctx, run.ID)
		if err != nil {
			return nil, fmt.Errorf("recover run %d: %w", run.ID, err)
		}
		p.onLine, p.tail.off = onLine, size
	}
	if !x.watch(p) {
		return nil, errors.New("agent executor closed")
	}
	x.log.Info("re-attached to a run on an agent", "run", run.ID, "agent", ar.Agent, "state", ar.State)
	return p, nil
}

func outcomeOf(ar store.AgentRun) executor.Outcome {
	return executor.Outcome{Succeeded: ar.Succeeded, ExitCode: ar.ExitCode, Reason: ar.Reason, Ended: ar.Ended}
}

// process is a run handed to an agent, as its scheduler watches it.
type process struct {
	x       *Executor
	runID   int64
	agent   string
	session string
	offered time.Time // when this process began waiting for the take
	// onLine is the spec's, for a run this executor started or resumed:
	// the process follows the run's stored log, which the agent's
	// reports fill through whichever scheduler they reach, and hands its
	// lines to onLine (tail, used by the watcher alone).
	onLine func(string)
	tail   tail

	mu         sync.Mutex
	pid        int
	started    chan struct{} // closed once the agent reported the start
	done       chan struct{} // closed once outcome is set
	outcome    executor.Outcome
	cancel     string // why it must stop; "" none
	cancelSent bool
	detached   bool
}

var (
	_ executor.Process  = (*process)(nil)
	_ executor.Detacher = (*process)(nil)
)

func (x *Executor) newProcess(runID int64, agent string) *process {
	return &process{x: x, runID: runID, agent: agent, offered: time.Now(), started: make(chan struct{}), done: make(chan struct{})}
}

// Handle names the agent and the process's pid there.
func (p *process) Handle() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "agent:" + p.agent + " pid:" + strconv.Itoa(p.pid)
}

func (p *process) Wait() executor.Outcome {
	<-p.done
	return p.outcome
}

// Cancel asks the agent to stop the run, through the store; it does not
// block (the engine calls it under its locks). Wait returns once the
// agent reports the end, or its lease runs out.
func (p *process) Cancel(cause error) {
	if cause == nil {
		cause = errors.New("cancelled")
	}
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return
	default:
	}
	if p.cancel == "" {
		p.cancel = cause.Error()
	}
	p.mu.Unlock()
	p.x.poke()
}

// Detach stops watching the run: the scheduler is shutting down, and the
// run goes on on its agent for the next scheduler to re-attach to.
func (p *process) Detach() {
	p.mu.Lock()
	p.detached = true
	p.mu.Unlock()
	p.x.unwatch(p)
}

func (p *process) markStarted(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.started:
	default:
		p.pid = pid
		close(p.started)
	}
}

func (p *process) finish(o executor.Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
	default:
		p.outcome = o
		close(p.done)
	}
}

// pendingCancel is the cancel still to write to the store, if any.
func (p *process) pendingCancel() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancelSent {
		return ""
	}
	return p.cancel
}

// watch adds p to the runs the watcher looks at, starting it if needed.
func (x *Executor) watch(p *process) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return false
	}
	x.watched[p.runID] = p
	if !x.watching {
		x.watching = true
		go x.watchLoop()
	}
	return true
}

func (x *Executor) unwatch(p *process) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.watched[p.runID] == p {
		delete(x.watched, p.runID)
	}
}

// poke wakes the watcher.
func (x *Executor) poke() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// watchLoop looks at the watched runs in the store every Poll, or when
// poked, until none is left.
func (x *Executor) watchLoop() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-x.wake:
		case <-timer.C:
		}
		x.mu.Lock()
		ps := slices.Collect(maps.Values(x.watched))
		if len(ps) == 0 {
			x.watching = false
			x.mu.Unlock()
			return
		}
		x.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), max(x.cfg.Poll, 5*time.Second))
		if err := x.look(ctx, ps); err != nil {
			x.log.Warn("agent runs: look in the store", "err", err)
		}
		cancel()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(x.cfg.Poll)
	}
}

// look does one round: writes pending cancels, withdraws offers not
// taken in time, lets the store end the runs of gone sessions, and
// reports the starts and ends of the watched runs.
func (x *Executor) look(ctx context.Context, ps []*process) error {
	var errs []error
	for _, p := range ps {
		if reason := p.pendingCancel(); reason != "" {
			ar, err := x.st.CancelAgentRun(ctx, p.runID, reason)
			if errors.Is(err, store.ErrNotFound) {
				continue // not handed yet (or forgotten: see below)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.mu.Lock()
			p.cancelSent = true
			p.mu.Unlock()
			if ar.Open() {
				x.signals.wake(p.agent)
			}
		}
		select {
		case <-p.started:
		default:
			if time.Since(p.offered) > x.cfg.TakeTimeout {
				_, err := x.st.WithdrawAgentRun(ctx, p.runID, fmt.Sprintf("agent %s did not take the run within %s", p.agent, x.cfg.TakeTimeout))
				if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
					errs = append(errs, err)
				}
			}
		}
	}
	if _, err := x.st.ExpireAgentRuns(ctx); err != nil {
		errs = append(errs, err)
	}
	ids := make([]int64, len(ps))
	for i, p := range ps {
		ids[i] = p.runID
	}
	rs, err := x.st.AgentRuns(ctx, store.AgentRunFilter{IDs: ids})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	found := map[int64]store.AgentRun{}
	for _, ar := range rs {
		found[ar.RunID] = ar
	}
	for _, p := range ps {
		ar, ok := found[p.runID]
		// Lines written so far, and at the end all of them: the engine
		// has every line before it learns the outcome.
		p.follow(ctx, ok && !ar.Open())
		switch {
		case !ok:
			// Only a run never offered (Start is offering it now) or one
			// the store forgot has no row; the first is not ours yet.
			if time.Since(p.offered) > x.cfg.TakeTimeout {
				p.finish(executor.Outcome{ExitCode: -1, Reason: fmt.Sprintf("lost: the store no longer knows run %d on agent %s", p.runID, p.agent)})
				x.unwatch(p)
			}
			continue
		case !ar.Started.IsZero():
			p.markStarted(ar.PID)
		}
		if !ar.Open() {
			p.finish(outcomeOf(ar))
			x.unwatch(p)
		}
	}
	return errors.Join(errs...)
}

// tail follows a run's log for its lines.
type tail struct {
	off     int64
	partial []byte
}

// follow hands onLine the lines added to the run's stored log since the
// last call; at the end (final), a last line without a newline too.
func (p *process) follow(ctx context.Context, final bool) {
	if p.onLine == nil {
		return
	}
	t := &p.tail
	for {
		b, err := p.x.st.ReadLog(ctx, p.runID, t.off, 64<<10)
		if err != nil || len(b) == 0 {
			break
		}
		t.off += int64(len(b))
		data := append(t.partial, b...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			p.onLine(string(bytes.TrimSuffix(data[:i], []byte("\r"))))
			data = data[i+1:]
		}
		t.partial = append(t.partial[:0], data...)
		if len(t.partial) > maxLine {
			t.partial = t.partial[:0] // not a directive; the log has it
		}
	}
	if final && len(t.partial) > 0 {
		p.onLine(string(t.partial))
		t.partial = nil
	}
}

// maxLine bounds a line handed to onLine, as the local executor's.
const maxLine = 64 << 10
