// Package storetest is the conformance suite every store.Store
// implementation runs: store/sqlite on a file per test, store/postgres on a
// schema per test. It checks the contract's promises — compare-and-set
// transitions, idempotent creation, fenced limits — with several handles
// on one database racing, as several schedulers would.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// OpenFunc returns a handle on the test's own database: a fresh, empty
// database the first time it is called with a given t, and another handle
// on that same database on later calls with the same t (the suite opens
// two handles to race them, as two schedulers would). The handle is
// closed by the implementation in t.Cleanup.
type OpenFunc func(t *testing.T) store.Store

// Run runs the whole suite against the implementation open returns.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open OpenFunc)
	}{
		{"CreateFields", testCreateFields},
		{"CreateIdempotent", testCreateIdempotent},
		{"CreateConcurrent", testCreateConcurrent},
		{"CreateInvalid", testCreateInvalid},
		{"RetryOnce", testRetryOnce},
		{"CreateMixed", testCreateMixed},
		{"Transitions", testTransitions},
		{"TransitionStamps", testTransitionStamps},
		{"TransitionConflict", testTransitionConflict},
		{"TransitionRace", testTransitionRace},
		{"TransitionBatch", testTransitionBatch},
		{"NotFound", testNotFound},
		{"Events", testEvents},
		{"EventsAfter", testEventsAfter},
		{"EventFeed", testEventFeed},
		{"Subscribe", testSubscribe},
		{"Quiet", testQuiet},
		{"QuietAnswer", testQuietAnswer},
		{"Decisions", testDecisions},
		{"FenceMaxRunning", testFenceMaxRunning},
		{"FenceMaxRunningRace", testFenceMaxRunningRace},
		{"FenceOncePerPeriod", testFenceOncePerPeriod},
		{"FenceWithinBatch", testFenceWithinBatch},
		{"FenceBatchRace", testFenceBatchRace},
		{"BatchDecisions", testBatchDecisions},
		{"Progress", testProgress},
		{"Artifacts", testArtifacts},
		{"ListArtifacts", testListArtifacts},
		{"Secret", testSecret},
		{"ReportAfterEnd", testReportAfterEnd},
		{"CancelRequests", testCancelRequests},
		{"ListRuns", testListRuns},
		{"Summaries", testSummaries},
		{"SummariesFollowRuns", testSummariesFollowRuns},
		{"ActiveCounts", testActiveCounts},
		{"ListPeriods", testListPeriods},
		{"Cursors", testCursors},
		{"Heartbeat", testHeartbeat},
		{"Ping", testPing},
		{"ResourceRequests", testResourceRequests},
		{"ResourceRace", testResourceRace},
		{"ResourceRelease", testResourceRelease},
		{"ResourceConsumable", testResourceConsumable},
		{"ResourceFairness", testResourceFairness},
		{"ResourceCrash", testResourceCrash},
		{"ResourceBatch", testResourceBatch},
		{"Pause", testPause},
		{"PauseFence", testPauseFence},
		{"PausePolicy", testPausePolicy},
		{"Then", testThen},
		{"PauseAcrossHandles", testPauseAcrossHandles},
		{"Marks", testMarks},
		{"MarkStamps", testMarkStamps},
		{"Audit", testAudit},
		{"AuditedCreate", testAuditedCreate},
		{"AgentRegister", testAgentRegister},
		{"AgentRegisterRace", testAgentRegisterRace},
		{"AgentRunMoves", testAgentRunMoves},
		{"AgentCancel", testAgentCancel},
		{"AgentExpire", testAgentExpire},
		{"Logs", testLogs},
		{"LogWriter", testLogWriter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

var perTest sync.Map // *testing.T or *testing.B → string

// PerTest returns what mk returned the first time PerTest was called with
// tb, so an OpenFunc can give every call of one test the same database.
func PerTest(tb testing.TB, mk func() string) string {
	if v, ok := perTest.Load(tb); ok {
		return v.(string)
	}
	v, loaded := perTest.LoadOrStore(tb, mk())
	if !loaded {
		tb.Cleanup(func() { perTest.Delete(tb) })
	}
	return v.(string)
}

// t0 has nanoseconds and a zone, so every test also checks that stores
// return UTC truncated to microseconds.
var t0 = time.Date(2026, 11, 26, 7, 30, 0, 123456789, time.FixedZone("CET", 3600))

// stored is t as a store returns it.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func ctxOf(t *testing.T) context.Context { return t.Context() }

// create creates runs and fails the test on error.
func create(t testing.TB, s store.Store, ps ...store.CreateRun) []store.Created {
	t.Helper()
	out, err := s.CreateRuns(t.Context(), ps)
	if err != nil {
		t.Fatalf("CreateRuns: %v", err)
	}
	if len(out) != len(ps) {
		t.Fatalf("CreateRuns returned %d results for %d runs", len(out), len(ps))
	}
	return out
}

// newRun creates one blocked run of job in period.
func newRun(t *testing.T, s store.Store, job, period string) talon.Run {
	t.Helper()
	return create(t, s, store.CreateRun{Job: job, Period: period, Trigger: "api", Reason: "created", Now: t0})[0].Run
}

// move applies one transition and fails the test unless it succeeds.
func move(t *testing.T, s store.Store, id int64, from, to talon.State) talon.Run {
	t.Helper()
	res := transition(t, s, store.Transition{RunID: id, From: []talon.State{from}, To: to, Reason: "to " + string(to), Now: t0})
	if res.Err != nil {
		t.Fatalf("transition run %d %s → %s: %v", id, from, to, res.Err)
	}
	return res.Run
}

// transition applies one transition and fails the test on a batch error.
func transition(t *testing.T, s store.Store, tr store.Transition) store.Result {
	t.Helper()
	res, err := s.Transition(ctxOf(t), []store.Transition{tr})
	if err != nil {
		t.Fatalf("Transition: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("Transition returned %d results for 1", len(res))
	}
	return res[0]
}

// pathTo lists the transitions that take a new (blocked) run to state.
func pathTo(state talon.State) []talon.State {
	switch state {
	case talon.StateReady:
		return []talon.State{talon.StateReady}
	case talon.StateRunning:
		return []talon.State{talon.StateReady, talon.StateRunning}
	case talon.StateSucceeded:
		return []talon.State{talon.StateReady, talon.StateRunning, talon.StateSucceeded}
	case talon.StateFailed, talon.StateSkipped:
		return []talon.State{state}
	}
	return nil
}

// runIn creates a run of job in period and moves it to state.
func runIn(t *testing.T, s store.Store, job, period string, state talon.State) talon.Run {
	t.Helper()
	r := newRun(t, s, job, period)
	for _, next := range pathTo(state) {
		r = move(t, s, r.ID, r.State, next)
	}
	return r
}

func getRun(t *testing.T, s store.Store, id int64) talon.Run {
	t.Helper()
	r, err := s.GetRun(ctxOf(t), id)
	if err != nil {
		t.Fatalf("GetRun(%d): %v", id, err)
	}
	return r
}

// parallel runs fn(i) for i in [0, n) at once and waits, bounded.
func parallel(t *testing.T, n int, fn func(i int)) {
	t.Helper()
	start := make(chan struct{})
	done := make(chan struct{}, n)
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			fn(i)
		}()
	}
	close(start)
	timeout := time.After(2 * time.Minute)
	for range n {
		select {
		case <-done:
		case <-timeout:
			t.Fatalf("%d goroutines did not finish in 2 minutes", n)
		}
	}
}
