// Package engine is Talon's scheduler loop: the only package that holds the
// clock, the store and the executors together.
//
// The engine is Step(ctx, now) (wake, err) plus a thin loop that waits for
// the wake time, an event (a run finished, a run was triggered) or the
// poll interval. Step fires time triggers, checks blocked runs whose
// answer may have changed, dispatches the runs whose constraints all pass,
// and records the runs that ended. Tests call Step at chosen instants, so
// months of schedule run in milliseconds.
//
// The store is the truth: every transition is a compare-and-set in the
// store, and the fenced limits (max_running, once_per_period) are decided
// inside the store's transaction. What the engine keeps in memory — which
// runs are blocked and when to look at them again, which processes it owns
// — is an index it can rebuild from the store at any time.
package engine

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/trigger"
)

// Config is what an Engine is built from. Only Store and Schedule are
// required.
type Config struct {
	Store    store.Store
	Schedule *schedule.Schedule
	// Load re-reads the schedule on Reload; nil disables reloading.
	Load func() (*schedule.Schedule, error)
	// Executors by name; jobs name theirs (default "local").
	Executors map[string]executor.Executor
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// LogDir receives run logs as LogDir/JOB/RUN.log; empty: "talon-logs".
	LogDir string
	// URL is the API address runs see as TALON_URL.
	URL string
	// LogLimit is how many bytes of each run's output the state store
	// keeps (executor.Spec.LogLimit); zero means
	// executor.DefaultLogLimit.
	LogLimit int64
	// CAFile, when set, is the CA certificate file runs see as TALON_CA,
	// so their talon verifies an https URL signed by a private CA.
	CAFile string
	// Lease is how long a scheduler instance may miss heartbeats before
	// its ready and running runs are declared lost (default 30s).
	Lease time.Duration
	// Grace is how late a time-trigger fire may be handled and still count
	// as on time rather than missed (default 1m).
	Grace time.Duration
	// MaxBatch bounds how many runs one step checks or dispatches at once
	// (default 500), so one step never holds a transaction for long.
	MaxBatch int
	// RunToken, when set, mints the token a run gets as TALON_TOKEN,
	// which lets it report its own progress and artifacts through the
	// API (internal/auth/runtoken). Without it TALON_TOKEN is empty.
	RunToken func(runID int64) string
	// LookupEnv reads the server's environment for secrets given as
	// {env: NAME} in a job's env; nil means os.LookupEnv. ReadFile reads
	// those given as {file: PATH}; nil means os.ReadFile. Both are read
	// each time a run starts, so a rotated secret is picked up.
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
	// Feed, when set, is the process's event feed over Store: on a store
	// shared with other schedulers, the runs they create or end reach
	// this one as soon as the store notifies it, rather than at its next
	// heartbeat (which still reads the store's feed, as a fallback).
	Feed *feed.Hub
}

// Engine schedules runs. Create it with New, run it with Loop (or drive
// it with Step in tests).
type Engine struct {
	cfg      Config
	st       store.Store
	now      func() time.Time
	log      *slog.Logger
	instance store.Instance
	sched    atomic.Pointer[plan]

	// kick wakes the loop; inbox holds run ids that changed outside the
	// loop (API triggers, cancels) and must be (re)indexed.
	kick  chan struct{}
	mu    sync.Mutex
	inbox []int64
	// inboxRuns are runs created outside the loop (API triggers), passed
	// on as the store returned them rather than read again.
	inboxRuns []talon.Run
	done      []completion // runs that ended, not yet recorded
	// arrived says an artifact was added since the last step: the runs
	// of jobs with an artifact constraint are checked at once.
	arrived bool
	// resChanged says resources changed outside the schedule (an agent
	// registered): the runs of jobs asking for resources are checked.
	resChanged bool
	// Work done off the loop goroutine hands its results back here:
	// runs whose slow constraints were checked, and executor starts.
	decided []decision
	started []startResult
	// inflight counts checks and starts running off the loop; the
	// semaphores bound them.
	inflight  atomic.Int64
	sensorSem chan struct{}
	startSem  chan struct{}

	// Owned by the loop goroutine (Step), never touched elsewhere.
	waiting map[int64]*waiter         // blocked runs by id
	byJob   map[string]map[int64]bool // blocked run ids by job
	queue   waitQueue                 // waiters by next check
	dirty   map[int64]bool            // blocked runs to check now
	// fresh holds blocked runs as a write just returned them, so the
	// next check need not read them again. A stale copy is harmless: a
	// run's fields other than its state do not change while it is
	// blocked, and every transition is a compare-and-set on the state.
	fresh map[int64]talon.Run
	// seeds are the counters of the periods whose runs ended in this
	// step, as the transactions that ended them left them: the checks of
	// the runs waiting for them use them rather than reading them again.
	// Dropped at the start of every step.
	seeds     map[store.JobPeriod]store.Summary
	checking  map[int64]bool          // blocked runs being checked off the loop
	nextFire  map[string]trigger.Fire // by job + "\x00" + trigger id
	fireWake  time.Time               // earliest of nextFire
	fireReady bool                    // fireWake is valid: no fire is due before it
	procs     map[int64]*proc         // runs this instance started
	pendingTx []store.Transition      // transitions to retry after an outage
	// pendingCreate holds the runs that follow recorded transitions
	// (retries, completion-triggered runs) when creating them failed.
	pendingCreate []store.CreateRun
	noRetry       map[int64]bool // failed runs not to retry (cancelled, timed out)
	buried        sync.Map       // dead instances reaped owning nothing: id → their heartbeat then
	lastSync      time.Time

	// lease is this scheduler's own lease (lease.go); heartbeats come from
	// keepLease's goroutine once Loop runs (async), else from Step.
	leaseMu sync.Mutex
	lease   leaseState
	async   atomic.Bool
	// feed is where the heartbeat goroutine is in the store's event feed
	// (followPeers); only that goroutine touches it.
	feed struct {
		cursor int64
		seen   map[int64]bool
	}
	reapDue atomic.Bool // a peer looks dead: reap at the next step

	// trigErr holds, by job + "\x00" + trigger id, why a time trigger
	// cannot compute its next fire (a calendar that ends too early).
	trigErrMu sync.Mutex
	trigErr   map[string]string

	healthy  atomic.Bool
	lastErr  atomic.Value // string
	procsMu  sync.Mutex   // guards procs for Cancel from the API
	stepping sync.Mutex   // one Step at a time
}

// The store keeps runs' output for executors (Spec.Logs).
var _ executor.LogStore = store.Store(nil)

type completion struct {
	runID   int64
	outcome executor.Outcome
	at      time.Time
}

// proc is a run this instance started.
type proc struct {
	run       talon.Run
	p         executor.Process
	started   time.Time // when it was recorded running
	deadline  time.Time // zero: no timeout
	timedOut  bool
	cancelled bool     // an operator's cancel was acted on
	secrets   []string // values of the job's secret env, masked in what the run reports
}

// New builds an engine. It does not touch the store until Run or Step.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: no store")
	}
	if cfg.Schedule == nil {
		return nil, errors.New("engine: no schedule")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LogDir == "" {
		cfg.LogDir = "talon-logs"
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = time.Minute
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = os.LookupEnv
	}
	if cfg.ReadFile == nil {
		cfg.ReadFile = os.ReadFile
	}
	host, _ := os.Hostname()
	e := &Engine{
		cfg:       cfg,
		st:        cfg.Store,
		now:       cfg.Now,
		log:       cfg.Logger,
		kick:      make(chan struct{}, 1),
		waiting:   map[int64]*waiter{},
		byJob:     map[string]map[int64]bool{},
		dirty:     map[int64]bool{},
		fresh:     map[int64]talon.Run{},
		seeds:     map[store.JobPeriod]store.Summary{},
		checking:  map[int64]bool{},
		sensorSem: make(chan struct{}, maxSlowChecks),
		startSem:  make(chan struct{}, maxStarts),
		nextFire:  map[string]trigger.Fire{},
		trigErr:   map[string]string{},
		procs:     map[int64]*proc{},
		noRetry:   map[int64]bool{},
		instance:  store.Instance{ID: newInstanceID(), Host: host, PID: os.Getpid(), Started: cfg.Now(), LogDir: cfg.LogDir},
	}
	p, err := compile(cfg.Schedule)
	if err != nil {
		return nil, err
	}
	e.sched.Store(p)
	e.healthy.Store(true)
	return e, nil
}

func newInstanceID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// InstanceID is this scheduler's id, stored as the owner of the runs it
// dispatches.
func (e *Engine) InstanceID() string { return e.instance.ID }

// Schedule returns the schedule in force.
func (e *Engine) Schedule() *schedule.Schedule { return e.sched.Load().s }

// Kick wakes the loop now.
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// ResourcesChanged tells the loop that resources changed outside the
// schedule (an agent registered, with its slots): the blocked runs of
// jobs that ask for resources are checked at once.
func (e *Engine) ResourcesChanged() {
	e.mu.Lock()
	e.resChanged = true
	e.mu.Unlock()
	e.Kick()
}

// notify queues runs that changed outside the loop and wakes it.
func (e *Engine) notify(ids ...int64) {
	e.mu.Lock()
	e.inbox = append(e.inbox, ids...)
	e.mu.Unlock()
	e.Kick()
}

// Loop runs the scheduler until ctx ends. Store outages are logged and retried
// with backoff; the loop never gives up while ctx lives. Heartbeats come
// from their own goroutine. On return every process this instance started
// has been stopped and its run recorded failed ("scheduler shut down"),
// as far as the store and the shutdown grace allow; what is left running
// in the store is declared lost by the next scheduler.
func (e *Engine) Loop(ctx context.Context) error {
	// The first heartbeat comes before the first step, so the lease is
	// current before anything is started.
	e.housekeep(ctx, e.now())
	e.async.Store(true)
	keeper, stopKeeper := context.WithCancel(ctx)
	followed := make(chan struct{})
	defer func() {
		stopKeeper()
		<-followed
	}()
	go e.keepLease(keeper)
	if e.cfg.Feed != nil && !e.exclusive() {
		go func() {
			defer close(followed)
			e.followFeed(keeper)
		}()
	} else {
		close(followed)
	}
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wake, err := e.Step(ctx, e.now())
		if ctx.Err() != nil {
			e.shutdown(ctx)
			return nil
		}
		var wait time.Duration
		if err != nil {
			backoff = min(max(backoff*2, 250*time.Millisecond), 10*time.Second)
			wait = backoff
			e.log.Warn("scheduler step", "err", err, "retry_in", wait)
		} else {
			backoff = 0
			wait = min(wake.Sub(e.now()), e.housekeeping())
		}
		if wait < 0 {
			wait = 0
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			e.shutdown(ctx)
			return nil
		case <-timer.C:
		case <-e.kick:
		}
	}
}

// cancelRequested stops the runs this instance owns that a cancel asked
// through another scheduler wants stopped.
func (e *Engine) cancelRequested(ctx context.Context) error {
	e.procsMu.Lock()
	n := len(e.procs)
	e.procsMu.Unlock()
	if n == 0 {
		return nil
	}
	reqs, err := e.st.CancelRequests(ctx, e.instance.ID)
	if err != nil {
		return fmt.Errorf("read cancel requests: %w", err)
	}
	e.procsMu.Lock()
	defer e.procsMu.Unlock()
	for id, by := range reqs {
		if pc := e.procs[id]; pc != nil && !pc.cancelled {
			pc.cancelled = true
			pc.p.Cancel(errors.New("cancelled by " + by))
		}
	}
	return nil
}

// housekeeping is how often the loop wakes without work: to sync runs
// other schedulers created.
func (e *Engine) housekeeping() time.Duration {
	return e.sched.Load().minPoll
}

// shutdown stops the processes this instance owns and records their runs
// failed ("scheduler shut down") before it returns, so their resources are
// freed and their retries are created at once rather than when the next
// scheduler declares them lost. What cannot be recorded within the grace
// period (the store is down, a process ignores its signal) is left
// running in the store, and the next scheduler declares it lost.
func (e *Engine) shutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	// Starts in flight finish first, so their processes are stopped too.
	for e.inflight.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-e.kick:
		}
	}
	e.procsMu.Lock()
	for id, p := range e.procs {
		// A run that goes on without its scheduler (on an agent) is left
		// running, for the scheduler that recovers it to re-attach.
		if d, ok := p.p.(executor.Detacher); ok {
			d.Detach()
			delete(e.procs, id)
		}
	}
	n := len(e.procs)
	for _, p := range e.procs {
		p.p.Cancel(errors.New("scheduler shut down"))
	}
	e.procsMu.Unlock()
	e.mu.Lock()
	n += len(e.started)
	e.mu.Unlock()
	if n == 0 {
		return
	}
	for {
		e.procsMu.Lock()
		left := len(e.procs)
		e.procsMu.Unlock()
		e.mu.Lock()
		done := len(e.done)
		e.mu.Unlock()
		if done >= left || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-e.kick:
		}
	}
	e.stepping.Lock()
	defer e.stepping.Unlock()
	p, now := e.sched.Load(), e.now()
	// The step the shutdown interrupted may have left its transitions
	// (ready → running) unrecorded; they go first.
	if ts := e.pendingTx; len(ts) > 0 {
		e.pendingTx = nil
		if err := e.apply(ctx, p, now, ts); err != nil {
			e.log.Warn("record runs at shutdown", "err", err)
			return
		}
	}
	if err := e.recordStarts(ctx, p, now); err != nil {
		e.log.Warn("record runs at shutdown", "err", err)
		return
	}
	if err := e.recordCompletions(ctx, p, now); err != nil {
		e.log.Warn("record runs at shutdown", "err", err)
	}
}

// Bounds of the work done off the loop: sensors (command constraints)
// checked at once, and executor starts in flight.
const (
	maxSlowChecks = 8
	maxStarts     = 16
)

// shutdownGrace bounds how long shutdown waits for runs to stop and be
// recorded; it exceeds the local executor's TERM-to-KILL grace.
const shutdownGrace = 10 * time.Second

// Healthy reports whether the last step reached the store.
func (e *Engine) Healthy() (bool, string) {
	s, _ := e.lastErr.Load().(string)
	return e.healthy.Load(), s
}

// Step does one round of work at now and returns when it wants to run
// again at the latest. It is safe to call from one goroutine at a time;
// Loop calls it, and tests call it directly with a fake clock.
func (e *Engine) Step(ctx context.Context, now time.Time) (time.Time, error) {
	e.stepping.Lock()
	defer e.stepping.Unlock()
	wake, err := e.step(ctx, now)
	if err != nil {
		e.healthy.Store(false)
		e.lastErr.Store(err.Error())
		return now.Add(time.Second), err
	}
	e.healthy.Store(true)
	e.lastErr.Store("")
	return wake, nil
}

func (e *Engine) step(ctx context.Context, now time.Time) (time.Time, error) {
	p := e.sched.Load()
	clear(e.seeds)
	// wake is when work is due (a fire, a re-check, a deadline); the
	// housekeeping (heartbeat, sync) is Loop's to schedule, so that a fake
	// clock steps only from one piece of work to the next.
	var wake time.Time

	// Keep the lease: other schedulers declare our runs lost without it.
	// Under Loop a goroutine of its own does this; a test stepping the
	// engine by hand gets it here, on its clock.
	if !e.async.Load() {
		e.leaseMu.Lock()
		due := e.lease.lastBeat.IsZero() || now.Sub(e.lease.lastBeat) >= e.cfg.Lease/3
		e.leaseMu.Unlock()
		if due {
			dbNow, err := e.heartbeat(ctx, now)
			if err != nil {
				return wake, err
			}
			if err := e.cancelRequested(ctx); err != nil {
				return wake, err
			}
			if e.peerDead(ctx, now, dbNow) {
				e.reapDue.Store(true)
			}
		}
	}
	e.fenceIfLapsed(now)

	// Retry transitions an outage interrupted before anything else, so a
	// finished run is never forgotten.
	if len(e.pendingTx) > 0 {
		// Runs that ended meanwhile join them: while the store keeps
		// failing, each try records them as well, rather than leaving
		// them behind the ones it cannot answer for.
		ends, _ := e.completions(ctx, p, now)
		ts := append(e.pendingTx, ends...)
		e.pendingTx = nil
		if err := e.apply(ctx, p, now, ts); err != nil {
			return wake, err
		}
	}
	if cs := e.pendingCreate; len(cs) > 0 {
		e.pendingCreate = nil
		if err := e.create(ctx, cs); err != nil {
			e.pendingCreate = append(cs, e.pendingCreate...)
			// The ends of runs are still recorded (an end whose
			// follow-up runs cannot be created is kept like them): a
			// store that refuses only creations must not hold every
			// finished run at running.
			return wake, errors.Join(err, e.recordStarts(ctx, p, now), e.recordCompletions(ctx, p, now))
		}
	}
	// The first sync, at start-up, is also the recovery: runs left ready
	// or running by a scheduler that is gone are re-attached or lost.
	if now.Sub(e.lastSync) >= p.minPoll || e.lastSync.IsZero() {
		if err := e.sync(ctx, p, now); err != nil {
			return wake, fmt.Errorf("sync blocked runs: %w", err)
		}
		e.lastSync = now
	} else if e.reapDue.Swap(false) {
		// A heartbeat found a dead peer: reap it now, not at the next
		// sync, so detection is bounded by the lease and one heartbeat.
		if err := e.reapOthers(ctx, p, now); err != nil {
			e.reapDue.Store(true)
			return wake, fmt.Errorf("reap dead schedulers: %w", err)
		}
	}

	if err := e.drainInbox(ctx); err != nil {
		return wake, err
	}
	if err := e.recordStarts(ctx, p, now); err != nil {
		return wake, err
	}
	next, err := e.fire(ctx, p, now)
	if err != nil {
		return wake, fmt.Errorf("fire triggers: %w", err)
	}
	wake = earliest(wake, next)

	// Check and dispatch in bounded batches until nothing due is left;
	// a dependency that succeeded in this step unblocks its dependents in
	// the same step.
	for {
		if err := e.recordStarts(ctx, p, now); err != nil {
			return wake, err
		}
		// The ends are recorded with the batch's decisions when they
		// cannot change them (see checkDue).
		ends, endJobs := e.completions(ctx, p, now)
		n, err := e.checkDue(ctx, p, now, ends, endJobs)
		if err != nil {
			return wake, err
		}
		if n == 0 {
			break
		}
	}
	wake = earliest(wake, e.queue.next())
	wake = earliest(wake, e.timeouts(now))
	if wake.IsZero() {
		wake = now.Add(24 * time.Hour)
	}
	return wake, nil
}

func earliest(a, b time.Time) time.Time {
	if b.IsZero() {
		return a
	}
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// waiter is a blocked run in the index.
type waiter struct {
	id    int64
	job   string
	next  time.Time // when to check at the latest
	index int       // in queue; -1 when not queued
	// notBefore is the earliest a run created with a delay (a retry's,
	// a jittered fire's) is checked, whatever touches it before.
	notBefore time.Time
}

// waitQueue is a min-heap of waiters by next check.
type waitQueue []*waiter

func (q waitQueue) Len() int           { return len(q) }
func (q waitQueue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	n := len(old)
	w := old[n-1]
	old[n-1] = nil
	w.index = -1
	*q = old[:n-1]
	return w
}
func (q waitQueue) next() time.Time {
	if len(q) == 0 {
		return time.Time{}
	}
	return q[0].next
}

// track indexes a blocked run to be checked at next (zero: now).
func (e *Engine) track(id int64, job string, next time.Time) {
	w := e.waiting[id]
	if w == nil {
		w = &waiter{id: id, job: job, index: -1}
		e.waiting[id] = w
		if e.byJob[job] == nil {
			e.byJob[job] = map[int64]bool{}
		}
		e.byJob[job][id] = true
	}
	if next.IsZero() {
		e.dirty[id] = true
		return
	}
	w.next = next
	if w.index >= 0 {
		heap.Fix(&e.queue, w.index)
	} else {
		heap.Push(&e.queue, w)
	}
}

// untrack removes a run that is no longer blocked from the index.
func (e *Engine) untrack(id int64) {
	w := e.waiting[id]
	if w == nil {
		return
	}
	if w.index >= 0 {
		heap.Remove(&e.queue, w.index)
	}
	delete(e.waiting, id)
	if m := e.byJob[w.job]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(e.byJob, w.job)
		}
	}
	delete(e.dirty, id)
	delete(e.fresh, id)
}

// touchJobs marks every blocked run of the given jobs for a check now:
// something they may depend on changed.
func (e *Engine) touchJobs(jobs ...string) {
	for _, j := range jobs {
		for id := range e.byJob[j] {
			e.dirty[id] = true
		}
	}
}

// notifyCreated queues runs created outside the loop and wakes it.
func (e *Engine) notifyCreated(runs ...talon.Run) {
	e.mu.Lock()
	e.inboxRuns = append(e.inboxRuns, runs...)
	e.mu.Unlock()
	e.Kick()
}

// drainInbox indexes runs that changed outside the loop.
func (e *Engine) drainInbox(ctx context.Context) error {
	e.mu.Lock()
	ids := e.inbox
	e.inbox = nil
	created := e.inboxRuns
	e.inboxRuns = nil
	arrived := e.arrived
	e.arrived = false
	resChanged := e.resChanged
	e.resChanged = false
	e.mu.Unlock()
	if arrived {
		e.touchJobs(e.sched.Load().artifactJobs...)
	}
	if resChanged {
		e.touchJobs(e.sched.Load().resJobs...)
	}
	for _, r := range created {
		if r.State == talon.StateBlocked {
			e.track(r.ID, r.Job, time.Time{})
			e.fresh[r.ID] = r
		}
	}
	if len(ids) == 0 {
		return nil
	}
	runs, err := e.st.ListRuns(ctx, store.RunFilter{IDs: ids})
	if err != nil {
		e.mu.Lock()
		e.inbox = append(ids, e.inbox...)
		e.mu.Unlock()
		return fmt.Errorf("read changed runs: %w", err)
	}
	p := e.sched.Load()
	for _, r := range runs {
		if r.State == talon.StateBlocked {
			e.track(r.ID, r.Job, time.Time{})
		} else {
			e.untrack(r.ID)
			if r.State.Terminal() {
				e.touchJobs(p.dependents(r.Job)...)
				e.touchJobs(p.freed(r.Job)...)
			}
		}
	}
	return nil
}

// sync re-reads every blocked run from the store, so runs created by
// another scheduler (or lost from the index) are checked too.
func (e *Engine) sync(ctx context.Context, p *plan, now time.Time) error {
	runs, err := e.st.ListRuns(ctx, store.RunFilter{States: []talon.State{talon.StateBlocked}})
	if err != nil {
		return err
	}
	seen := make(map[int64]bool, len(runs))
	for _, r := range runs {
		seen[r.ID] = true
		if e.waiting[r.ID] == nil {
			next := r.RecheckAt
			if next.IsZero() || next.Before(now) {
				next = time.Time{}
			}
			e.track(r.ID, r.Job, next)
		}
	}
	for id := range e.waiting {
		if !seen[id] {
			e.untrack(id)
		}
	}
	return e.reapOthers(ctx, p, now)
}

// Settle steps at now until no run this instance started is still
// running, no blocked run is due and no event is waiting, and returns the
// next wake time. Between steps it waits for runs to end, as long as ctx
// allows. Tests drive a fake clock with it: months of schedule in
// milliseconds, without sleeping.
func (e *Engine) Settle(ctx context.Context, now time.Time) (time.Time, error) {
	for spins := 0; ; spins++ {
		wake, err := e.Step(ctx, now)
		if err != nil {
			return wake, err
		}
		e.procsMu.Lock()
		busy := len(e.procs) + int(e.inflight.Load())
		e.procsMu.Unlock()
		e.mu.Lock()
		pending := len(e.done) + len(e.inbox) + len(e.inboxRuns) + len(e.decided) + len(e.started)
		if e.arrived {
			pending++
		}
		e.mu.Unlock()
		switch {
		case busy == 0 && pending == 0 && wake.After(now):
			return wake, nil
		case pending > 0 || busy == 0:
			// Events are waiting, or something is due now (a zero-delay
			// retry): step again, but never forever.
			if spins > 10000 {
				return wake, fmt.Errorf("settle at %s: the schedule never settles", now.Format(time.RFC3339))
			}
			continue
		}
		select {
		case <-ctx.Done():
			return wake, fmt.Errorf("settle at %s: %d runs still running: %w", now.Format(time.RFC3339), busy, context.Cause(ctx))
		case <-e.kick:
		}
	}
}
