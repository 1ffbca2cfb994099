package engine_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/talontest"
)

// These tests run real loops on the real clock against PostgreSQL, with a
// short lease, and cut connections with the TCP proxy of outage_test.go.
// They wait on conditions with bounded timeouts, never for a fixed time.

const testLease = time.Second

// execLog records when each run's function started and returned.
type execLog struct {
	mu      sync.Mutex
	start   map[int64]time.Time
	end     map[int64]time.Time
	release chan struct{} // closed: blocked functions return nil
}

func newExecLog() *execLog {
	return &execLog{start: map[int64]time.Time{}, end: map[int64]time.Time{}, release: make(chan struct{})}
}

// block runs until released (success) or cancelled (the cause).
func (l *execLog) block(ctx context.Context, r inprocess.Run) error {
	l.mu.Lock()
	l.start[r.Run.ID] = time.Now()
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.end[r.Run.ID] = time.Now()
		l.mu.Unlock()
	}()
	select {
	case <-l.release:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (l *execLog) times(id int64) (start, end time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start[id], l.end[id]
}

const leaseSched = `
jobs:
  slow:
    period: daily
    poll: 1s            # the loop syncs (and may reap) every second
    retries: {max: 1}
    executor: inprocess
    command: [block]
`

// loopEngine starts an engine's loop on st with the test lease; the loop
// stops when the test ends.
func loopEngine(t *testing.T, st store.Store, log *execLog) *engine.Engine {
	t.Helper()
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(leaseSched))
	if err != nil {
		t.Fatal(err)
	}
	ip := inprocess.New()
	ip.Register("block", log.block)
	e, err := engine.New(engine.Config{Store: st, Schedule: s, Lease: testLease, LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"inprocess": ip}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Loop(ctx) }()
	t.Cleanup(func() {
		select {
		case <-log.release:
		default:
			close(log.release)
		}
		cancel()
		<-done
	})
	return e
}

func openPG(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func runsOf(t *testing.T, st store.Store) []talon.Run {
	t.Helper()
	rs, err := st.ListRuns(context.Background(), store.RunFilter{Job: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func stateOf(t *testing.T, st store.Store, id int64) talon.Run {
	t.Helper()
	r, err := st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDatabaseOutageLosesNothing: two schedulers on one PostgreSQL, which
// goes away (connections refused, as when it is stopped) for three
// leases. Nobody missed a heartbeat through its own fault, so no run is
// declared lost: the run that succeeded during the outage is recorded
// succeeded, with the time it finished, and is not retried.
func TestDatabaseOutageLosesNothing(t *testing.T) {
	pgURL := talontest.PostgresURL(t)
	pxA, pxB := talontest.NewProxy(t, pgURL), talontest.NewProxy(t, pgURL)
	log := newExecLog()
	a := loopEngine(t, openPG(t, pxA.URL), log)
	run, _, err := a.Trigger(t.Context(), "slow", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the run starts on the first scheduler", func() (bool, string) {
		s, _ := log.times(run.ID)
		return !s.IsZero(), "not started"
	})
	// The second scheduler is stepped by hand, so that it is the first to
	// look at the store when it is back.
	st := openPG(t, pxB.URL)
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(leaseSched))
	if err != nil {
		t.Fatal(err)
	}
	b, err := engine.New(engine.Config{Store: st, Schedule: s, Lease: testLease, LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"inprocess": inprocess.New()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Step(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}

	// The fault: the database refuses everyone for three leases. The job
	// ends half a lease into it. (These sleeps are the fault's length,
	// not waits for the scheduler.)
	pxA.SetRefusing(t, true)
	pxB.SetRefusing(t, true)
	time.Sleep(testLease / 2)
	close(log.release)
	time.Sleep(3 * testLease)
	_, finished := log.times(run.ID)
	pxB.SetRefusing(t, false)
	pxA.SetRefusing(t, false)
	// The second scheduler steps the moment the database is back, before
	// the owner has had a chance to heartbeat: it must not judge it.
	if _, err := b.Step(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 20*time.Second, "the run is recorded", func() (bool, string) {
		r := stateOf(t, st, run.ID)
		return r.State.Terminal(), string(r.State)
	})
	r := stateOf(t, st, run.ID)
	if r.State != talon.StateSucceeded {
		t.Fatalf("run %d %s (%s), want succeeded: the database was down, not its scheduler", r.ID, r.State, r.Reason)
	}
	if finished.IsZero() || r.Finished == nil || r.Finished.Sub(finished).Abs() > 500*time.Millisecond {
		t.Errorf("run finished at %v, want when its function returned, %v (during the outage)", r.Finished, finished)
	}
	if rs := runsOf(t, st); len(rs) != 1 {
		t.Errorf("%d runs of slow, want 1: nothing was lost, so nothing is retried", len(rs))
	}
}

// TestLeaseLapseFencesRuns: a scheduler cut off from the database (its
// connections alone fail, and not by a refusal) stops its own run before
// the lease lapses; the peer declares the run lost after the lease and
// its retry starts only after the original stopped.
func TestLeaseLapseFencesRuns(t *testing.T) {
	pgURL := talontest.PostgresURL(t)
	px := talontest.NewProxy(t, pgURL)
	log := newExecLog()
	a := loopEngine(t, openPG(t, px.URL), log)
	run, _, err := a.Trigger(t.Context(), "slow", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the run starts on the first scheduler", func() (bool, string) {
		s, _ := log.times(run.ID)
		return !s.IsZero(), "not started"
	})
	st := openPG(t, pgURL)
	loopEngine(t, st, log)
	px.SetDown(true) // a's connections break; nothing proves the database is down
	cut := time.Now()

	var retry talon.Run
	waitFor(t, 20*time.Second, "the retry starts on the peer", func() (bool, string) {
		for _, r := range runsOf(t, st) {
			if r.RetryOf == run.ID {
				retry = r
				s, _ := log.times(r.ID)
				return !s.IsZero(), "retry " + string(r.State)
			}
		}
		return false, "no retry yet"
	})
	lost := stateOf(t, st, run.ID)
	if lost.State != talon.StateFailed || !strings.HasPrefix(lost.Reason, "lost: ") {
		t.Errorf("original %s (%s), want failed: lost: …", lost.State, lost.Reason)
	}
	_, end1 := log.times(run.ID)
	start2, _ := log.times(retry.ID)
	if end1.IsZero() || !end1.Before(start2) {
		t.Errorf("original ended %v, retry started %v: they overlap", end1.Sub(cut), start2.Sub(cut))
	}
	if d := end1.Sub(cut); d > testLease {
		t.Errorf("original stopped %s after its scheduler was cut off, want within the lease %s", d, testLease)
	}
}

// TestDeadSchedulerDetected: a scheduler that stops heartbeating (here:
// cut off for good) has its runs declared lost by a peer within the
// lease plus one heartbeat of its last heartbeat, not at the peer's next
// periodic sync.
func TestDeadSchedulerDetected(t *testing.T) {
	pgURL := talontest.PostgresURL(t)
	px := talontest.NewProxy(t, pgURL)
	log := newExecLog()
	st := openPG(t, pgURL)
	a := loopEngine(t, openPG(t, px.URL), log)
	run, _, err := a.Trigger(t.Context(), "slow", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the run starts", func() (bool, string) {
		r := stateOf(t, st, run.ID)
		return r.State == talon.StateRunning && r.Owner == a.InstanceID(), string(r.State) + " on " + r.Owner
	})
	loopEngine(t, st, log)
	// The peer must have heartbeated for a whole lease before it judges.
	time.Sleep(testLease) // part of the setup, not a wait for the scheduler
	px.SetDown(true)
	var lastBeat time.Time
	insts, err := st.Instances(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		if in.ID == a.InstanceID() {
			lastBeat = in.Heartbeat
		}
	}
	waitFor(t, 20*time.Second, "the run is declared lost", func() (bool, string) {
		r := stateOf(t, st, run.ID)
		return r.State == talon.StateFailed, string(r.State)
	})
	evs, err := st.Events(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lostAt time.Time
	for _, ev := range evs {
		if strings.HasPrefix(ev.Reason, "lost: ") && strings.Contains(ev.Reason, "missed its heartbeat") {
			lostAt = ev.Time
		}
	}
	if lostAt.IsZero() {
		t.Fatalf("no event declares run %d lost by a peer: %+v", run.ID, evs)
	}
	// The bound: lease + one heartbeat (lease/3), plus slack for steps and
	// queries on a loaded machine. (Before heartbeats had their own
	// goroutine, a peer noticed only at its next sync, a poll away.)
	bound := testLease + testLease/3 + 2*testLease
	if d := lostAt.Sub(lastBeat); d > bound {
		t.Errorf("declared lost %s after the last heartbeat, want within %s", d, bound)
	}
	t.Logf("detected %s after the last heartbeat (lease %s)", lostAt.Sub(lastBeat), testLease)
}

// TestSlowSensorBlocksNothing: a sensor that runs for three leases holds
// up neither the heartbeat (the scheduler's lease stays fresh, so no peer
// could declare its runs lost) nor other jobs, which run meanwhile.
func TestSlowSensorBlocksNothing(t *testing.T) {
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(`
jobs:
  gated:
    period: daily
    poll: 1h
    constraints:
      command: {argv: [sleep, "3"], timeout: 10s}
    executor: inprocess
    command: [noop]
  quick:
    period: daily
    executor: inprocess
    command: [noop]
`))
	if err != nil {
		t.Fatal(err)
	}
	st := openPG(t, talontest.PostgresURL(t))
	ip := inprocess.New()
	ip.Register("noop", noop)
	e, err := engine.New(engine.Config{Store: st, Schedule: s, Lease: testLease, LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"inprocess": ip}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Loop(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	start := time.Now()
	gated, _, err := e.Trigger(t.Context(), "gated", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	quick, _, err := e.Trigger(t.Context(), "quick", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The sensor runs for three leases. Meanwhile the heartbeat is renewed
	// (several distinct heartbeats are seen), and quick runs to the end.
	beats := map[time.Time]bool{}
	for time.Since(start) < 3*testLease {
		insts, err := st.Instances(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range insts {
			if in.ID == e.InstanceID() {
				beats[in.Heartbeat] = true
			}
		}
		time.Sleep(50 * time.Millisecond) // sampling the heartbeat, not waiting for the scheduler
	}
	if len(beats) < 3 {
		t.Errorf("%d distinct heartbeats while a sensor ran for 3 leases, want the lease renewed (every lease/3)", len(beats))
	}
	waitFor(t, 20*time.Second, "gated is decided", func() (bool, string) {
		r := stateOf(t, st, gated.ID)
		return r.State != talon.StateBlocked, string(r.State)
	})
	q := stateOf(t, st, quick.ID)
	evs, err := st.Events(t.Context(), gated.ID)
	if err != nil {
		t.Fatal(err)
	}
	var decided time.Time
	for _, ev := range evs {
		if ev.From == talon.StateBlocked && decided.IsZero() {
			decided = ev.Time
		}
	}
	if q.State != talon.StateSucceeded || q.Finished == nil || !q.Finished.Before(decided) {
		t.Errorf("quick %s, finished %v; gated's sensor answered at %v: want quick done while the sensor ran", q.State, q.Finished, decided)
	}
}

// TestDatabaseOutageKeepsLocalRuns: local runs fence themselves through
// their supervisor, so they must hear that a database outage — which
// nobody can reap during — extends their deadline: a job that runs
// through an outage of three leases succeeds, and is not retried.
func TestDatabaseOutageKeepsLocalRuns(t *testing.T) {
	px := talontest.NewProxy(t, talontest.PostgresURL(t))
	st := openPG(t, px.URL)
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"local"}}, "schedule.yaml", []byte(`
jobs:
  slow:
    period: daily
    retries: {max: 1}
    command: [sleep, "2"]
`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{Store: st, Schedule: s, Lease: testLease, LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"local": local.New(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Loop(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	run, _, err := e.Trigger(t.Context(), "slow", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the run starts", func() (bool, string) {
		r := stateOf(t, st, run.ID)
		return r.State == talon.StateRunning, string(r.State)
	})
	px.SetRefusing(t, true)
	time.Sleep(3 * testLease) // the fault's length
	px.SetRefusing(t, false)
	waitFor(t, 20*time.Second, "the run is recorded", func() (bool, string) {
		r := stateOf(t, st, run.ID)
		return r.State.Terminal(), string(r.State)
	})
	if r := stateOf(t, st, run.ID); r.State != talon.StateSucceeded {
		t.Errorf("run %s (%s), want succeeded: the database was down for everyone", r.State, r.Reason)
	}
	if rs := runsOf(t, st); len(rs) != 1 {
		t.Errorf("%d runs, want 1", len(rs))
		for _, r := range rs {
			t.Logf("run %d attempt %d %s (%s)", r.ID, r.Attempt, r.State, r.Reason)
		}
	}
}

// TestPeersWakeEachOther: a run blocked on one scheduler by a limit that a
// run on another scheduler holds starts soon after that run ends, not at
// its next poll (an hour here): schedulers follow each other's events.
func TestPeersWakeEachOther(t *testing.T) {
	peersWake(t, testLease, false)
}

// TestPeersWakeEachOtherByFeed: the same with each scheduler following
// the store's notifier through its feed, and a lease so long that its
// heartbeats (which read the peers' events too) come far too late: the
// notification alone wakes the peer.
func TestPeersWakeEachOtherByFeed(t *testing.T) {
	peersWake(t, 10*time.Minute, true)
}

func peersWake(t *testing.T, lease time.Duration, feeds bool) {
	pgURL := talontest.PostgresURL(t)
	log := newExecLog()
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "schedule.yaml", []byte(`
jobs:
  solo:
    period: daily
    poll: 1h
    constraints: {max_running: 1}
    executor: inprocess
    command: [block]
`))
	if err != nil {
		t.Fatal(err)
	}
	start := func(st store.Store) *engine.Engine {
		ip := inprocess.New()
		ip.Register("block", log.block)
		ctx, cancel := context.WithCancel(context.Background())
		var hub *feed.Hub
		hubDone := make(chan struct{})
		if feeds {
			hub = feed.New(st, slog.New(slog.NewTextHandler(t.Output(), nil)), feed.Options{})
			go func() { defer close(hubDone); hub.Run(ctx) }()
		} else {
			close(hubDone)
		}
		e, err := engine.New(engine.Config{Store: st, Schedule: s, Lease: lease, LogDir: t.TempDir(), Feed: hub,
			Executors: map[string]executor.Executor{"inprocess": ip}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); e.Loop(ctx) }()
		t.Cleanup(func() { cancel(); <-done; <-hubDone })
		return e
	}
	t.Cleanup(func() {
		select {
		case <-log.release:
		default:
			close(log.release)
		}
	})
	st := openPG(t, pgURL)
	a := start(st)
	first, _, err := a.Trigger(t.Context(), "solo", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first run starts", func() (bool, string) {
		s, _ := log.times(first.ID)
		return !s.IsZero(), "not started"
	})
	b := start(openPG(t, pgURL))
	second, _, err := b.Trigger(t.Context(), "solo", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the second run is fenced", func() (bool, string) {
		r := stateOf(t, st, second.ID)
		return strings.Contains(r.Reason, "max_running"), r.Reason
	})
	close(log.release)
	waitFor(t, 10*time.Second, "the second run starts after the first ends (not at its next poll, an hour away)", func() (bool, string) {
		r := stateOf(t, st, second.ID)
		return r.State == talon.StateSucceeded, string(r.State) + ": " + r.Reason
	})
}

// TestPeerArtifactWakesByFeed: a run waiting for an artifact starts soon
// after the artifact is added by another process on the same database
// (another scheduler's API; here its store), not at its next poll (an
// hour) nor its next heartbeat (the lease is ten minutes): the
// artifact's event reaches the scheduler through the store's notifier.
func TestPeerArtifactWakesByFeed(t *testing.T) {
	pgURL := talontest.PostgresURL(t)
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "schedule.yaml", []byte(`
jobs:
  extract:
    period: daily
    poll: 1h
    executor: inprocess
    command: [noop]
  load:
    period: daily
    poll: 1h
    executor: inprocess
    command: [noop]
    constraints:
      artifact: "file:///data/{{period}}/*.csv"
`))
	if err != nil {
		t.Fatal(err)
	}
	start := func(st store.Store) *engine.Engine {
		ip := inprocess.New()
		ran := func(ctx context.Context, r inprocess.Run) error {
			if r.Run.Job == "extract" {
				<-ctx.Done() // runs until the test ends: its artifact comes through the API
			}
			return nil
		}
		ip.Register("noop", ran)
		ctx, cancel := context.WithCancel(context.Background())
		hub := feed.New(st, slog.New(slog.NewTextHandler(t.Output(), nil)), feed.Options{})
		hubDone := make(chan struct{})
		go func() { defer close(hubDone); hub.Run(ctx) }()
		e, err := engine.New(engine.Config{Store: st, Schedule: s, Lease: 10 * time.Minute, LogDir: t.TempDir(), Feed: hub,
			Executors: map[string]executor.Executor{"inprocess": ip}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); e.Loop(ctx) }()
		t.Cleanup(func() { cancel(); <-done; <-hubDone })
		return e
	}
	st := openPG(t, pgURL)
	b := start(st)
	extract, _, err := b.Trigger(t.Context(), "extract", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	load, _, err := b.Trigger(t.Context(), "load", talon.TriggerRequest{Period: extract.Period})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "load waits for the artifact, extract runs", func() (bool, string) {
		l, x := stateOf(t, st, load.ID), stateOf(t, st, extract.ID)
		return strings.Contains(l.Reason, "waiting for an artifact") && x.State == talon.StateRunning, l.Reason + " / " + string(x.State)
	})
	day := strings.TrimPrefix(extract.Period, "daily/")
	if _, err := openPG(t, pgURL).AddArtifact(t.Context(), extract.ID, "file:///data/"+day+"/sales.csv", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "load starts once the artifact is added by another process", func() (bool, string) {
		r := stateOf(t, st, load.ID)
		return r.State == talon.StateSucceeded, string(r.State) + ": " + r.Reason
	})
}
