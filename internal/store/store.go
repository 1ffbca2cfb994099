// Package store is the contract of Talon's state store: the one place that
// holds runs, their history and decisions, artifacts and trigger cursors.
// Two implementations satisfy it, store/sqlite (embedded default) and
// store/postgres (several schedulers, many nodes), and both pass the one
// conformance suite in store/storetest.
//
// Every transition is one transaction guarded by the state the caller
// expects (compare-and-set) and writes an event row. Run creation is
// idempotent on (job, period, trigger, fire time), or on a client key,
// through a unique index. Fenced limits (max_running, once per period) are
// decided inside the transaction, so they hold with several schedulers;
// so are resource allocations (Transition.Allocate).
// Times come from the caller; implementations store them in UTC with
// microsecond precision.
package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: the run (or other row) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the run left the state the caller expected.
	ErrConflict = errors.New("conflict: run is not in the expected state")
	// ErrFenced: a fenced limit (max_running, once per period) holds.
	// FenceError carries which one.
	ErrFenced = errors.New("fenced limit reached")
	// ErrUnavailable: the database cannot be reached; retry later.
	ErrUnavailable = errors.New("state store unavailable")
	// ErrLogGap: a write to a run's log at an offset past its end (see
	// AppendLog); the log has no gaps.
	ErrLogGap = errors.New("offset past the end of the log")
	// ErrDown wraps the ErrUnavailable errors that prove the database is
	// down for every client, not only for this one: it refused the
	// connection, or said it is starting up or shutting down. No other
	// scheduler can be renewing its lease meanwhile, which is what lets a
	// scheduler keep its runs through such an outage (see engine).
	ErrDown = errors.New("database down")
)

// UserError turns the sentinels above into errors a user can act on,
// naming what was asked for (what, such as "run 42"): not_found,
// conflict, or unavailable; other errors pass as they are (internal).
// The scheduler's commands and the query service's reads word store
// trouble alike through it.
func UserError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return talon.Errorf(talon.ENOTFOUND, "%s not found", what)
	case errors.Is(err, ErrConflict):
		return talon.Errorf(talon.ECONFLICT, "%s changed state meanwhile; look again with talon show", what)
	case errors.Is(err, ErrUnavailable):
		return talon.Errorf(talon.EUNAVAILABLE, "the state store is unavailable; the scheduler retries and resumes by itself (%v)", err)
	}
	return err
}

// Exclusive is implemented by stores that one scheduler uses at a time
// (the embedded SQLite file, locked by talon serve). No peer can declare
// such a scheduler's runs lost while it lives, so it never fences itself.
type Exclusive interface {
	Exclusive() bool
}

// FenceError says which fenced limit stopped a transition.
type FenceError struct {
	Constraint string // "max_running", "once_per_period" or "resources"
	Reason     string
}

func (e *FenceError) Error() string { return e.Constraint + ": " + e.Reason }
func (e *FenceError) Unwrap() error { return ErrFenced }

// Store is the state store.
type Store interface {
	// CreateRuns creates runs in one transaction, idempotently: a run whose
	// (job, period, trigger, fire time) — or, when Key is set, (job, key) —
	// already exists is not created again; the existing run is returned
	// with Created false. Results are in the order of ps.
	CreateRuns(ctx context.Context, ps []CreateRun) ([]Created, error)

	// GetRun returns a run with its progress and artifacts, or ErrNotFound.
	GetRun(ctx context.Context, id int64) (talon.Run, error)

	// ListRuns returns runs matching f, newest first (by id).
	ListRuns(ctx context.Context, f RunFilter) ([]talon.Run, error)

	// Transition applies each transition in its own compare-and-set within
	// one transaction, and returns one result per item: the updated run,
	// or ErrNotFound, ErrConflict (the run was not in From) or a
	// *FenceError: a fenced limit, or, for any run entering ready, its
	// job's pause (PausedFence, decided under the lock PauseJob takes). An
	// error return means the whole batch was not applied (e.g.
	// ErrUnavailable).
	Transition(ctx context.Context, ts []Transition) ([]Result, error)

	// Decisions returns the latest answer of every constraint for a run.
	Decisions(ctx context.Context, runID int64) ([]talon.Decision, error)

	// Events returns a run's history, oldest first: its transitions and
	// decisions (talon.EventTransition, talon.EventDecision). Progress
	// and artifact events are in the feed (EventsAfter) only.
	Events(ctx context.Context, runID int64) ([]talon.Event, error)

	// EventsAfter returns the events (of every run, of every type) with
	// an id above afterID, oldest first, at most limit of them: the feed
	// a scheduler reads to learn what its peers did, and the event
	// stream replays. Ids increase in the order rows are inserted, which
	// on PostgreSQL is not quite the order they commit: a reader that
	// must not miss one reads a little below its cursor.
	//
	// Every event row is written in the transaction of what it records:
	// a run's creation or transition, a decision whose reason changed
	// (see Transition.Quiet), a progress report (SetProgress), an
	// artifact (AddArtifact).
	EventsAfter(ctx context.Context, afterID int64, limit int) ([]talon.Event, error)

	// Subscribe returns a channel that receives a value when new events
	// may exist, and a function that ends the subscription. The first
	// value comes as soon as the subscription is active (on PostgreSQL,
	// once its listening connection is up): a consumer reads the feed
	// then, and again after every later value. Every handle
	// on the same database wakes its subscribers after a write that
	// added events commits — on PostgreSQL, the writes of other
	// processes too (LISTEN/NOTIFY); SQLite tells the handles of its
	// process. Wake-ups coalesce (one value may stand for many writes)
	// and may be spurious: after a lost connection to the database is
	// re-established the subscribers are woken, since notifications sent
	// meanwhile were lost. A subscriber reads EventsAfter to learn what
	// happened. A slow subscriber never blocks a writer.
	Subscribe() (wake <-chan struct{}, stop func())

	// LastEventID returns the id of the newest event, 0 when there is none.
	LastEventID(ctx context.Context) (int64, error)

	// Summaries returns, for each (job, period), the counts of its runs by
	// state. Pairs without runs are absent from the map.
	Summaries(ctx context.Context, keys []JobPeriod) (map[JobPeriod]Summary, error)

	// ActiveCounts returns, for each job, how many of its runs are ready
	// or running over all periods, for max_running. Neither finished runs
	// (history grows without bound) nor blocked ones (a backlog can be as
	// long) are read. Jobs without such runs are absent.
	ActiveCounts(ctx context.Context, jobs []string) (map[string]int, error)

	// ListPeriods returns the periods that have runs, with counts per job,
	// newest period first.
	ListPeriods(ctx context.Context, f PeriodFilter) ([]PeriodRow, error)

	// RequestCancel asks the scheduler that owns a running run to stop it
	// (a cancel that reached another scheduler). ErrNotFound for unknown
	// runs, ErrConflict when the run is not running.
	RequestCancel(ctx context.Context, runID int64, by string) error

	// CancelRequests returns, for the running runs owned by owner that
	// someone asked to cancel, who asked.
	CancelRequests(ctx context.Context, owner string) (map[int64]string, error)

	// SetProgress replaces a run's progress. ErrNotFound for unknown runs,
	// ErrConflict for runs that have finished (see Reportable).
	SetProgress(ctx context.Context, runID int64, p talon.Progress) error

	// AddArtifact records an artifact of a run, with an optional name
	// (its job and period are taken from the run). ErrNotFound for
	// unknown runs, ErrConflict for runs that have finished (see
	// Reportable). Callers check the URL (internal/artifact); the store
	// refuses only an empty one.
	AddArtifact(ctx context.Context, runID int64, url, name string, now time.Time) (talon.Artifact, error)

	// ListArtifacts returns the artifacts matching f, newest first (by
	// id). A period, and a job, are looked up through an index: the
	// artifact constraint asks for one period's artifacts at every check.
	ListArtifacts(ctx context.Context, f ArtifactFilter) ([]talon.Artifact, error)

	// Secret returns the random value kept under name (32 bytes), making
	// it the first time it is asked for: every handle on the database,
	// in every scheduler, gets the same value, also when two ask at once.
	// Run tokens are signed with one.
	Secret(ctx context.Context, name string) ([]byte, error)

	// Cursor returns the last fire instant handled for a job's trigger, and
	// false if there is none yet.
	Cursor(ctx context.Context, job, trigger string) (time.Time, bool, error)

	// AdvanceCursors moves trigger cursors forward; a cursor never moves
	// back, so two schedulers may both advance it.
	AdvanceCursors(ctx context.Context, cs []CursorUpdate) error

	// Heartbeat records that a scheduler instance is alive, and returns the
	// database's clock, which lease comparisons use.
	Heartbeat(ctx context.Context, in Instance) (dbNow time.Time, err error)

	// Instances lists the scheduler instances known to the store.
	Instances(ctx context.Context) ([]Instance, error)

	// Holds returns the resource holds of the given runs; with no ids,
	// every hold: those of live runs and the consumable units of every
	// period. Ordered by path, then run.
	Holds(ctx context.Context, runIDs []int64) ([]resource.Hold, error)

	// Held returns every hold a run has taken, including those released
	// when it ended (or went back to blocked), in the order they were
	// taken: the record of what a finished run ran with.
	Held(ctx context.Context, runID int64) ([]resource.Hold, error)

	// Waiters returns the runs queued for resources, in queue order
	// (priority, then run id).
	Waiters(ctx context.Context) ([]resource.Waiter, error)

	// PauseJob pauses a job: its runs no longer enter ready (Transition
	// answers a *FenceError{Constraint: "paused"}) until ResumeJob. A job
	// already paused keeps its pause as it was; the answer is that pause
	// with created false.
	PauseJob(ctx context.Context, p talon.Pause) (pause talon.Pause, created bool, err error)

	// ResumeJob ends a job's pause and returns it; ErrNotFound when the
	// job is not paused.
	ResumeJob(ctx context.Context, job string) (talon.Pause, error)

	// PausedJobs lists the paused jobs, by name.
	PausedJobs(ctx context.Context) ([]talon.Pause, error)

	// AddAudit records one operation in the audit and returns its id.
	AddAudit(ctx context.Context, a talon.AuditEntry) (int64, error)

	// ListAudit returns audit entries matching f, newest first (by id).
	ListAudit(ctx context.Context, f AuditFilter) ([]talon.AuditEntry, error)

	// RegisterAgent starts session a.Session of agent a.Name (checked
	// with CheckAgent), its lease running for lease from the database's
	// now, and returns it as stored. The name is refused (ErrConflict,
	// see AgentConflict) while another session holds it with a live
	// lease, unless that session is previous: an agent that restarted
	// proves it is the same one (its earlier process is gone) by naming
	// its earlier session. Registering the current session again renews
	// it. The open runs of the name's other sessions end lost in the
	// same transaction (LostAgentReason) and are returned.
	RegisterAgent(ctx context.Context, a Agent, previous string, lease time.Duration) (Agent, []AgentRun, error)

	// RenewAgent renews the lease of an agent's session for lease from
	// the database's now. ErrNotFound when the session is not the
	// agent's current one, or its lease has run out: the agent must stop
	// its runs (they are, or will be, declared lost) and register again.
	RenewAgent(ctx context.Context, name, session string, lease time.Duration) (Agent, error)

	// Agents lists the agents by name, with their leases live or not,
	// and the database's now to judge them by.
	Agents(ctx context.Context) ([]Agent, time.Time, error)

	// OfferAgentRun hands run r.RunID of job r.Job to the current session
	// of agent r.Agent, with the spec it needs to start it (r.Spec); the
	// other fields are the store's. ErrConflict when the agent has no
	// live session, or the run was handed to an agent before.
	OfferAgentRun(ctx context.Context, r AgentRun) (AgentRun, error)

	// TakeAgentRuns moves the given runs that session of agent was
	// offered to taken, and returns every run of ids that the session
	// holds and has not started, with its spec: an agent that missed the
	// answer of an earlier take gets them again.
	TakeAgentRuns(ctx context.Context, agent, session string, ids []int64) ([]AgentRun, error)

	// StartAgentRun records that the session started the run's process.
	// ErrConflict when the run is not the session's or has ended (it was
	// withdrawn, or declared lost): the agent must kill the process.
	StartAgentRun(ctx context.Context, runID int64, session string, pid int) (AgentRun, error)

	// EndAgentRun records how the session's run ended. ErrConflict when
	// the run is not the session's or has already ended (a loss decided
	// first stands).
	EndAgentRun(ctx context.Context, runID int64, session string, o AgentOutcome) (AgentRun, error)

	// CancelAgentRun asks the agent to stop the run, with why; a run
	// still offered ends at once with that reason. An ended run is
	// returned as it is.
	CancelAgentRun(ctx context.Context, runID int64, reason string) (AgentRun, error)

	// WithdrawAgentRun ends a run its agent has not taken, with reason.
	// ErrConflict when it was taken (or has ended) meanwhile.
	WithdrawAgentRun(ctx context.Context, runID int64, reason string) (AgentRun, error)

	// ExpireAgentRuns ends lost every open run whose session is not its
	// agent's live session, by the database's clock, and returns them.
	// It also forgets runs and agents past AgentRetention.
	ExpireAgentRuns(ctx context.Context) ([]AgentRun, error)

	// AgentRuns lists the runs handed to agents that match f, by run id.
	AgentRuns(ctx context.Context, f AgentRunFilter) ([]AgentRun, error)

	// AppendLog stores data as the bytes of run runID's log from byte off
	// on (executor.LogStore, which the engine gives executors): bytes
	// below the log's current size were stored by an earlier try of the
	// same write and are skipped, and only what lies past the end is
	// added, as one chunk. An off past the end is refused with
	// ErrLogGap; an unknown run with ErrNotFound. One statement when the
	// write is the next one, the usual case.
	AppendLog(ctx context.Context, runID, off int64, data []byte) error

	// ReadLog returns the bytes of run runID's log from byte off on, at
	// most limit of them: fewer at the end of what is stored so far, none
	// at or past it, and none for a run without a stored log.
	ReadLog(ctx context.Context, runID, off int64, limit int) ([]byte, error)

	// LogSize is how many bytes of run runID's log are stored.
	LogSize(ctx context.Context, runID int64) (int64, error)

	// Ping checks that the database answers now, for health checks: nil,
	// or an error wrapping ErrUnavailable. The caller bounds it with ctx.
	Ping(ctx context.Context) error

	// Close releases the store's connections.
	Close() error
}

// LogRead is the rule both stores apply to a read of a log's chunks:
// chunks is what the store holds from the chunk containing off on (by
// offset, with their offsets in offs), and the answer is their bytes
// from off on, at most limit of them.
func LogRead(offs []int64, chunks [][]byte, off int64, limit int) []byte {
	var out []byte
	for i, c := range chunks {
		end := offs[i] + int64(len(c))
		if end <= off {
			continue
		}
		from := max(off-offs[i], 0)
		c = c[from:]
		if room := limit - len(out); len(c) > room {
			c = c[:room]
		}
		out = append(out, c...)
		if len(out) >= limit {
			break
		}
	}
	return out
}

// Reportable is the rule both stores apply to progress and artifacts: a
// run reports them until it ends — while blocked and ready too, since its
// process may print before its start is recorded — and a finished run's
// record is closed (ErrConflict), so what it shows is what it ended with.
func Reportable(s talon.State) error {
	if s.Terminal() {
		return fmt.Errorf("run is %s: %w", s, ErrConflict)
	}
	return nil
}

// CreateRun describes a run to create.
type CreateRun struct {
	Job         string
	Period      string // period key
	Environment string
	Trigger     string
	FireTime    time.Time // zero for external triggers
	Key         string    // client idempotency key, optional
	Executor    string
	Attempt     int // default 1
	RetryOf     int64
	Params      map[string]string
	// State is the initial state: blocked (default), or skipped to record
	// a missed fire that the catch-up policy drops, never silently.
	State  talon.State
	Reason string
	Now    time.Time
	// NotBefore, when set, is the earliest the run is checked (a retry's
	// delay); it becomes the run's RecheckAt.
	NotBefore time.Time
	// IfPaused says what becomes of the run when its job is paused,
	// decided in the transaction that creates it (so a pause committed
	// before it is never missed, and no separate read of the pauses is
	// needed): created as asked (the default), recorded skipped with the
	// pause in its reason, or refused.
	IfPaused PausePolicy
	// Audit, when set, is recorded in the audit in the transaction that
	// creates the run, with CreatedDetail as its detail: the operation and
	// its record commit together, in the same round trip on PostgreSQL.
	// When the run is not created (its key was held, or a pause refused
	// it) nothing is recorded; the caller records what came of it.
	Audit *talon.AuditEntry
}

// CreatedDetail is the detail of the audit entry CreateRun.Audit records
// for the run it created.
func CreatedDetail(id int64, period string) string {
	return fmt.Sprintf("run %d for %s", id, period)
}

// PausePolicy is what CreateRuns does with a run of a paused job.
type PausePolicy string

const (
	// PauseIgnore creates the run as asked (the default).
	PauseIgnore PausePolicy = ""
	// PauseSkip records the run skipped, finished at its creation, its
	// reason ending with "; skipped: job " and the pause (SkippedReason).
	PauseSkip PausePolicy = "skip"
	// PauseRefuse creates nothing: the result has Created false, no run,
	// and Paused set.
	PauseRefuse PausePolicy = "refuse"
)

// SkippedReason is the reason of a run PauseSkip recorded skipped.
func SkippedReason(reason string, p talon.Pause) string {
	return reason + "; skipped: job " + p.Describe()
}

// SkipPaused is c recorded skipped because its job is paused.
func SkipPaused(c CreateRun, p talon.Pause) CreateRun {
	c.State = talon.StateSkipped
	c.NotBefore = time.Time{}
	c.Reason = SkippedReason(c.Reason, p)
	return c
}

// Created is one result of CreateRuns.
type Created struct {
	Run     talon.Run
	Created bool
	// Paused is the pause that refused the run (PauseRefuse).
	Paused *talon.Pause
}

// Transition moves one run from one of the From states to To, with a
// reason, stamping Started when entering running and Finished when
// entering a terminal state. Decisions, when non-nil, replace the run's
// stored decisions (the latest answer of each constraint).
type Transition struct {
	RunID     int64
	From      []talon.State
	To        talon.State
	Reason    string
	Now       time.Time
	Decisions []talon.Decision
	RecheckAt time.Time // blocked runs: when to look again; zero clears
	Owner     string    // set when entering ready or running
	Handle    string    // set when non-empty
	Executor  string    // set when non-empty
	// Then are runs created in the same transaction as this transition
	// into a terminal state (not a mark): the runs a success fires, a
	// failure's retry. They are created when the run is, once the
	// transition is applied, in To with Finished at the transition's
	// time — also when an earlier attempt of this same transition
	// applied it, its commit unanswered, so a retried end still creates
	// what follows it. Each needs a unique key (Key or FireTime), which
	// makes creating them again harmless; PauseRefuse is not allowed.
	// Their results are Result.Then, in order.
	Then []CreateRun
	// Fence, when set, is checked inside the transaction before the run
	// enters ready; if it holds, the item's result is a *FenceError.
	Fence *Fence
	// Allocate, when set, is decided inside the same transaction after
	// the Fence, for a run entering ready: every request is served, and
	// the holds written, or none is and the item's result is a
	// *FenceError{Constraint: "resources"} whose reason says what the run
	// waits for; the run is then queued (see resource.Ledger) until it
	// leaves blocked, or is re-decided blocked with Decisions that have no
	// "resources" answer.
	//
	// Holds are released in the transaction that moves their run into a
	// terminal state, or from ready or running back to blocked, whatever
	// the path (success, failure, cancel, timeout, lost), so none can
	// leak; units of consumable nodes stay counted until their period
	// ends.
	Allocate *Allocation
	// Quiet skips the event row for a blocked → blocked re-decision whose
	// answer did not change — the same reason, or Decisions with the
	// same AnswerKey as the run's last ones — so polling does not flood
	// the history and the event feed.
	Quiet bool
	// Mark is an operator's mark by hand: the move is checked with
	// talon.CanMark instead of talon.CanTransition (so a finished run may
	// change its outcome), and a run that had finished keeps the time it
	// finished.
	Mark bool
}

// AnswerKey says what of a run's decisions makes its answer: each
// constraint's action, and the reason of each answer that only an event
// can change. An answer that time alone will change (RecheckAt set) is
// known by that time instead, since its words may count down to it
// ("not before 07:00 (in 2h13m)"): re-checking it writes no event until
// something else changes.
func AnswerKey(ds []talon.Decision) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Constraint)
		b.WriteByte('=')
		b.WriteString(string(d.Action))
		if d.RecheckAt.IsZero() {
			b.WriteString(": ")
			b.WriteString(d.Reason)
		} else {
			b.WriteString(" @")
			b.WriteString(strconv.FormatInt(d.RecheckAt.UnixMicro(), 10))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Evented is the rule both stores apply to a transition's event row,
// given the run's state, reason and stored answer (AnswerKey of its last
// decisions, "" before any) before it: whether to write the event, and
// the answer to store after it ("" to keep the stored one, when t has no
// Decisions).
func Evented(t Transition, from talon.State, reason, answer string) (write bool, newAnswer string) {
	if t.Decisions != nil {
		newAnswer = AnswerKey(t.Decisions)
	}
	if !t.Quiet || from != t.To {
		return true, newAnswer
	}
	same := reason == t.Reason || (answer != "" && newAnswer != "" && answer == newAnswer)
	return !same, newAnswer
}

// Fence carries the limits decided inside the store's transaction.
type Fence struct {
	// MaxRunning > 0 limits the job's runs in ready or running.
	MaxRunning int
	// OncePerPeriod: no other run of the job in the run's period may have
	// succeeded, be running or be ready.
	OncePerPeriod bool
}

// Allocation is what a run entering ready asks of the resource tree.
type Allocation struct {
	// Tree is the caller's schedule's tree: capacities come from it, so a
	// reloaded schedule's capacities apply at once while the holds of
	// running runs stay.
	Tree *resource.Tree
	// Requests have {{environment}} already resolved.
	Requests []resource.Request
	// Priority orders the queue: higher first, then older runs.
	Priority int
}

// Result is one transition's outcome.
type Result struct {
	Run talon.Run
	Err error
	// Then are the results of the transition's Then, in order: a run
	// created or the one holding its key; zero for those not created
	// (the run did not end up where the transition takes it).
	Then []Created
	// Counts, for an item that moved its run into a terminal state, are
	// the counters of the run's job and period as the transaction left
	// them: what Summaries answers just after it. The engine checks the
	// runs waiting for that period with them, without reading them again.
	Counts Summary
}

// RunFilter selects runs. Zero fields match everything.
type RunFilter struct {
	Job      string
	Period   string
	States   []talon.State
	IDs      []int64
	BeforeID int64 // pagination: only runs with id < BeforeID
	Limit    int   // 0: no limit
	// WithArtifacts loads each run's artifacts (the API wants them; the
	// engine's hot paths do not).
	WithArtifacts bool
}

// ArtifactFilter selects artifacts. Zero fields match everything.
type ArtifactFilter struct {
	Job      string
	Period   string // a period key, environment included
	RunID    int64
	BeforeID int64 // pagination: only artifacts with id < BeforeID
	Limit    int   // 0: no limit
}

// SecretSize is the length of the values Secret makes.
const SecretSize = 32

// AuditFilter selects audit entries. Zero fields match everything.
type AuditFilter struct {
	Since    time.Time // entries at or after
	Actor    string
	BeforeID int64 // pagination: only entries with id < BeforeID
	Limit    int   // 0: no limit
}

// PausedFence is the fence of a run whose job is paused.
func PausedFence(p talon.Pause) *FenceError {
	return &FenceError{Constraint: "paused", Reason: "job " + p.Job + " " + p.Describe()}
}

// JobPeriod names one job's period.
type JobPeriod struct {
	Job    string
	Period string
}

// Summary counts runs by state.
type Summary map[talon.State]int

// PeriodFilter selects periods.
type PeriodFilter struct {
	Job string
	// Before, for pagination, keeps only periods whose key sorts before
	// it (the last period of the previous page).
	Before string
	Limit  int
}

// PeriodRow is one (period, job) with its run counts and latest run.
type PeriodRow struct {
	Period    string
	Job       string
	Counts    Summary
	LatestRun int64
	Latest    talon.State
}

// CursorUpdate moves one trigger cursor.
type CursorUpdate struct {
	Job     string
	Trigger string
	Fired   time.Time
}

// Instance is one running scheduler process.
type Instance struct {
	ID        string
	Host      string
	PID       int
	Started   time.Time
	Heartbeat time.Time
	// LogDir is where the scheduler keeps its runs' logs (and the local
	// executor its status files), so a peer on the same host that
	// recovers a run it had started but not recorded finds its outcome.
	LogDir string
}

// Opener opens a store from a URL such as "sqlite:talon.db" or
// "postgres://…".
type Opener func(ctx context.Context, url string) (Store, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a store implementation available under a URL scheme, so
// a program embedding Talon can add its own.
func Register(scheme string, o Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[scheme] = o
}

// Open opens the store named by url, choosing the implementation by its
// scheme ("sqlite:", "postgres://", "postgresql://").
func Open(ctx context.Context, url string) (Store, error) {
	scheme, _, ok := strings.Cut(url, ":")
	if !ok {
		return nil, fmt.Errorf("state %q: want sqlite:PATH or postgres://…", url)
	}
	mu.RLock()
	o := openers[scheme]
	mu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("state %q: unknown store %q (known: %s)", url, scheme, strings.Join(Schemes(), ", "))
	}
	return o(ctx, url)
}

// Schemes lists registered store schemes.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for k := range openers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
