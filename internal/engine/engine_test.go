package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type testBundle struct {
	e *engine.Engine
	// q reads what the engine did, as the API does, at the test's clock.
	q      *query.Service
	st     store.Store
	dbPath string
	clock  *clock
	funcs  *inprocess.Executor
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// setup builds an engine over a fresh SQLite store with the given
// schedule and an inprocess executor holding the test's functions.
func setup(t testing.TB, yaml string, start time.Time, funcs map[string]inprocess.Func) *testBundle {
	t.Helper()
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("load schedule: %v", err)
	}
	path := filepath.Join(t.TempDir(), "talon.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := setupWith(t, s, st, start, funcs)
	b.dbPath = path
	return b
}

func setupWith(t testing.TB, s *schedule.Schedule, st store.Store, start time.Time, funcs map[string]inprocess.Func) *testBundle {
	t.Helper()
	ip := inprocess.New()
	for name, f := range funcs {
		ip.Register(name, f)
	}
	c := &clock{t: start}
	e, err := engine.New(engine.Config{
		Store: st, Schedule: s, Now: c.Now,
		Executors: map[string]executor.Executor{"inprocess": ip},
		LogDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{e: e, q: query.New(st, e, c.Now), st: st, clock: c, funcs: ip}
}

// settle steps the engine at the clock's time until it is idle, bounded.
func (b *testBundle) settle(t testing.TB) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wake, err := b.e.Settle(ctx, b.clock.Now())
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	return wake
}

// at moves the clock to now and settles.
func (b *testBundle) at(t testing.TB, now time.Time) time.Time {
	t.Helper()
	b.clock.Set(now)
	return b.settle(t)
}

func (b *testBundle) runs(t testing.TB, job string) []talon.Run {
	t.Helper()
	rs, err := b.st.ListRuns(context.Background(), store.RunFilter{Job: job})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

func (b *testBundle) trigger(t testing.TB, job string, req talon.TriggerRequest) talon.Run {
	t.Helper()
	r, _, err := b.e.Trigger(context.Background(), job, req)
	if err != nil {
		t.Fatalf("trigger %s: %v", job, err)
	}
	return r
}

func noop(context.Context, inprocess.Run) error { return nil }

// TestMonth drives October 2026 (31 days, with the end of British summer
// time on the 25th) of a small schedule on a fake clock and checks every
// run's state and period.
func TestMonth(t *testing.T) {
	const sched = `
jobs:
  extract:
    period: daily
    timezone: Europe/London
    triggers: [{schedule: "0 6 * * *"}]
    executor: inprocess
    command: [noop]
  load:
    period: daily
    timezone: Europe/London
    triggers: [{after: extract}]
    constraints:
      after: [extract]
      not_before: "07:00"
    executor: inprocess
    command: [noop]
  weekly:
    period: weekly
    timezone: Europe/London
    triggers: [{schedule: "0 8 * * 1", period: previous}]
    constraints:
      after: [{job: load, period: same}]
    executor: inprocess
    command: [noop]
  monthly:
    period: monthly
    timezone: Europe/London
    triggers: [{schedule: "0 9 1 * *", period: previous}]
    constraints:
      once_per_period: true
    executor: inprocess
    command: [noop]
`
	start := mustTime(t, "2026-09-30T12:00:00Z")
	end := mustTime(t, "2026-11-01T09:30:00Z")
	b := setup(t, sched, start, map[string]inprocess.Func{"noop": noop})
	began := time.Now()
	now := start
	steps := 0
	for !now.After(end) {
		wake := b.at(t, now)
		if !wake.After(now) {
			t.Fatalf("wake %s not after now %s", wake, now)
		}
		now = wake
		steps++
	}
	t.Logf("%d steps, %s", steps, time.Since(began))

	london, _ := time.LoadLocation("Europe/London")
	var wantDays []string
	for d := time.Date(2026, 10, 1, 12, 0, 0, 0, london); d.Before(time.Date(2026, 11, 2, 0, 0, 0, 0, london)); d = d.AddDate(0, 0, 1) {
		wantDays = append(wantDays, "daily/"+d.Format("2006-01-02"))
	}
	tests := []struct {
		job     string
		periods []string
	}{
		{job: "extract", periods: wantDays},
		{job: "load", periods: wantDays},
		{job: "weekly", periods: []string{"weekly/2026-W40", "weekly/2026-W41", "weekly/2026-W42", "weekly/2026-W43"}},
		{job: "monthly", periods: []string{"monthly/2026-09", "monthly/2026-10"}},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			runs := b.runs(t, tt.job)
			var got []string
			for _, r := range runs {
				got = append(got, r.Period)
				if r.State != talon.StateSucceeded {
					t.Errorf("run %d %s %s: state %s (%s), want succeeded", r.ID, r.Job, r.Period, r.State, r.Reason)
				}
				if tt.job == "load" && r.Started != nil {
					if l := r.Started.In(london); l.Hour() != 7 || l.Minute() != 0 {
						t.Errorf("load %s started at %s, want 07:00 London", r.Period, l)
					}
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.periods, " ") {
				t.Errorf("periods:\n got %v\nwant %v", got, tt.periods)
			}
		})
	}
}

// TestDependencyUnblocksAtOnce: a downstream run blocked on its upstream
// is dispatched in the same step in which the upstream succeeds, not
// after a poll.
func TestDependencyUnblocksAtOnce(t *testing.T) {
	const sched = `
jobs:
  extract:
    period: daily
    poll: 1h
    executor: inprocess
    command: [noop]
  load:
    period: daily
    poll: 1h
    constraints: {after: [extract]}
    executor: inprocess
    command: [noop]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{"noop": noop})
	b.trigger(t, "load", talon.TriggerRequest{})
	b.settle(t)
	if r := b.runs(t, "load")[0]; r.State != talon.StateBlocked || !strings.Contains(r.Reason, "extract") {
		t.Fatalf("load before extract: %s (%s), want blocked on extract", r.State, r.Reason)
	}
	b.trigger(t, "extract", talon.TriggerRequest{})
	b.settle(t) // the clock has not moved: no poll can have happened
	r := b.runs(t, "load")[0]
	if r.State != talon.StateSucceeded {
		t.Fatalf("load after extract succeeded: %s (%s), want succeeded without a poll", r.State, r.Reason)
	}
}

func TestConstraintActions(t *testing.T) {
	const sched = `
jobs:
  once:
    period: daily
    constraints: {once_per_period: true}
    executor: inprocess
    command: [noop]
  gated:
    period: daily
    constraints: {max_blocked: 1, not_before: "23:00"}
    executor: inprocess
    command: [noop]
  late:
    period: daily
    constraints: {start_by: "09:30", not_before: "09:00"}
    executor: inprocess
    command: [noop]
  late-cancel:
    period: daily
    constraints: {start_by: {at: "09:30", action: cancel}, not_before: "09:00"}
    executor: inprocess
    command: [noop]
`
	now := mustTime(t, "2026-11-26T08:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{"noop": noop})
	for _, j := range []string{"once", "once", "gated", "gated", "late", "late-cancel"} {
		b.trigger(t, j, talon.TriggerRequest{})
		b.settle(t)
	}
	b.at(t, mustTime(t, "2026-11-26T09:45:00Z"))
	tests := []struct {
		job    string
		states []talon.State
		reason string // of the last run
	}{
		{job: "once", states: []talon.State{talon.StateSucceeded, talon.StateSkipped}, reason: "already"},
		{job: "gated", states: []talon.State{talon.StateBlocked, talon.StateSkipped}, reason: "max_blocked"},
		{job: "late", states: []talon.State{talon.StateFailed}, reason: "09:30"},
		{job: "late-cancel", states: []talon.State{talon.StateSkipped}, reason: "09:30"},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			runs := b.runs(t, tt.job)
			if len(runs) != len(tt.states) {
				t.Fatalf("%d runs, want %d", len(runs), len(tt.states))
			}
			for i, r := range runs {
				if r.State != tt.states[i] {
					t.Errorf("run %d: %s (%s), want %s", r.ID, r.State, r.Reason, tt.states[i])
				}
			}
			if last := runs[len(runs)-1]; !strings.Contains(last.Reason, tt.reason) {
				t.Errorf("reason %q, want it to mention %q", last.Reason, tt.reason)
			}
		})
	}
	// Every decision is stored with each constraint's answer.
	d, err := b.q.Run(context.Background(), b.runs(t, "gated")[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Decisions) != 2 || d.Decisions[1].Constraint != "not_before" || d.Decisions[1].Action != talon.ActionBlock {
		t.Errorf("decisions %+v, want max_blocked pass and not_before block", d.Decisions)
	}
}

func TestCatchup(t *testing.T) {
	tests := []struct {
		policy  string
		created int // runs that ran
		skipped int // fires recorded as skipped
	}{
		{policy: "all", created: 5, skipped: 0},
		{policy: "latest", created: 1, skipped: 4},
		{policy: "none", created: 0, skipped: 5},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			sched := fmt.Sprintf(`
jobs:
  hourly:
    period: hourly
    triggers: [{schedule: "@hourly"}]
    catchup: %s
    executor: inprocess
    command: [noop]
`, tt.policy)
			b := setup(t, sched, mustTime(t, "2026-11-26T00:30:00Z"), map[string]inprocess.Func{"noop": noop})
			b.settle(t)
			// The scheduler is down from 00:30 to 05:30: fires at 01:00…05:00 are missed.
			b.at(t, mustTime(t, "2026-11-26T05:30:00Z"))
			ran, skipped := 0, 0
			for _, r := range b.runs(t, "hourly") {
				switch r.State {
				case talon.StateSucceeded:
					ran++
				case talon.StateSkipped:
					skipped++
					if !strings.Contains(r.Reason, "missed fire") {
						t.Errorf("skip reason %q, want it to say the fire was missed", r.Reason)
					}
				default:
					t.Errorf("run %d %s", r.ID, r.State)
				}
			}
			if ran != tt.created || skipped != tt.skipped {
				t.Errorf("ran %d skipped %d, want %d and %d", ran, skipped, tt.created, tt.skipped)
			}
			// Restarting does not fire again: the cursor is stored.
			again := setupWith(t, b.e.Schedule(), b.st, mustTime(t, "2026-11-26T05:31:00Z"), map[string]inprocess.Func{"noop": noop})
			again.settle(t)
			if n := len(again.runs(t, "hourly")); n != tt.created+tt.skipped {
				t.Errorf("after restart %d runs, want %d", n, tt.created+tt.skipped)
			}
		})
	}
}

func TestRetriesAndTimeout(t *testing.T) {
	const sched = `
jobs:
  flaky:
    period: daily
    retries: {max: 2, delay: 5m}
    executor: inprocess
    command: [fail]
  slow:
    period: daily
    timeout: 1h
    executor: inprocess
    command: [block]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{
		"fail":  func(context.Context, inprocess.Run) error { return errors.New("boom") },
		"block": func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return context.Cause(ctx) },
	})
	b.trigger(t, "flaky", talon.TriggerRequest{})
	b.settle(t)
	if n := len(b.runs(t, "flaky")); n != 2 {
		t.Fatalf("%d flaky runs after first failure, want 2 (the retry waits 5m)", n)
	}
	if r := b.runs(t, "flaky")[1]; r.State != talon.StateBlocked || r.Attempt != 2 {
		t.Fatalf("retry: %s attempt %d, want blocked attempt 2", r.State, r.Attempt)
	}
	b.at(t, now.Add(5*time.Minute))
	b.at(t, now.Add(10*time.Minute))
	runs := b.runs(t, "flaky")
	if len(runs) != 3 {
		t.Fatalf("%d flaky runs, want 3 (attempt 1 and 2 retries)", len(runs))
	}
	for i, r := range runs {
		if r.State != talon.StateFailed || r.Attempt != i+1 || r.Period != "daily/2026-11-26" {
			t.Errorf("run %d: %s attempt %d %s, want failed attempt %d", r.ID, r.State, r.Attempt, r.Period, i+1)
		}
	}

	b.clock.Set(now.Add(20 * time.Minute))
	slow := b.trigger(t, "slow", talon.TriggerRequest{})
	wake, err := b.e.Step(context.Background(), b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(80 * time.Minute); wake.After(want) {
		t.Errorf("wake %s, want by the timeout %s", wake, want)
	}
	b.at(t, now.Add(80*time.Minute))
	r, _ := b.st.GetRun(context.Background(), slow.ID)
	if r.State != talon.StateFailed || !strings.Contains(r.Reason, "timeout") {
		t.Errorf("slow: %s (%s), want failed by timeout", r.State, r.Reason)
	}
}

// TestRetryWaitsItsDelay: a retry waiting its delay is not started
// early when something its job waits on changes (here a run of the same
// job ends, which frees a max_running slot and touches the job's blocked
// runs).
func TestRetryWaitsItsDelay(t *testing.T) {
	const sched = `
jobs:
  flaky:
    period: daily
    retries: {max: 1, delay: 5m}
    constraints: {max_running: 2}
    executor: inprocess
    command: [run]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	release := make(chan struct{})
	b := setup(t, sched, now, map[string]inprocess.Func{
		"run": func(_ context.Context, r inprocess.Run) error {
			if r.Run.Params["hold"] != "" {
				<-release
				return nil
			}
			return errors.New("boom")
		},
	})
	held := b.trigger(t, "flaky", talon.TriggerRequest{Params: map[string]string{"hold": "yes"}})
	b.trigger(t, "flaky", talon.TriggerRequest{})
	if _, err := b.e.Step(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	// The failing run ends; its retry waits for 10:05.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(b.runs(t, "flaky")) < 3 {
		if ctx.Err() != nil {
			t.Fatal("no retry was created")
		}
		if _, err := b.e.Step(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	// The held run ends at 10:01: the job's blocked runs are looked at.
	close(release)
	b.at(t, now.Add(time.Minute))
	if r, _ := b.st.GetRun(context.Background(), held.ID); r.State != talon.StateSucceeded {
		t.Fatalf("held run: %s, want succeeded", r.State)
	}
	retry := b.runs(t, "flaky")[2]
	if retry.RetryOf == 0 || retry.State != talon.StateBlocked {
		t.Fatalf("retry %d: %s (retry of %d), want blocked until 10:05", retry.ID, retry.State, retry.RetryOf)
	}
	b.at(t, now.Add(5*time.Minute))
	if r, _ := b.st.GetRun(context.Background(), retry.ID); r.State != talon.StateFailed {
		t.Errorf("retry at 10:05: %s, want run (and failed)", r.State)
	}
}

func TestCancel(t *testing.T) {
	const sched = `
jobs:
  slow:
    period: daily
    executor: inprocess
    command: [block]
  waiting:
    period: daily
    constraints: {not_before: "23:00"}
    executor: inprocess
    command: [block]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{
		"block": func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return context.Cause(ctx) },
	})
	ctx := context.Background()
	slow := b.trigger(t, "slow", talon.TriggerRequest{})
	waiting := b.trigger(t, "waiting", talon.TriggerRequest{})
	if _, err := b.e.Step(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.Cancel(ctx, slow.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.Cancel(ctx, waiting.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	tests := []struct {
		id     int64
		state  talon.State
		reason string
	}{
		{id: slow.ID, state: talon.StateFailed, reason: "cancelled by alice"},
		{id: waiting.ID, state: talon.StateSkipped, reason: "cancelled by bob"},
	}
	for _, tt := range tests {
		r, _ := b.st.GetRun(ctx, tt.id)
		if r.State != tt.state || !strings.Contains(r.Reason, tt.reason) {
			t.Errorf("run %d: %s (%s), want %s (%s)", tt.id, r.State, r.Reason, tt.state, tt.reason)
		}
	}
	var te *talon.Error
	if _, err := b.e.Cancel(ctx, 9999, "x"); !errors.As(err, &te) || te.Code != talon.ENOTFOUND {
		t.Errorf("cancel unknown run: %v, want not_found", err)
	}
	if _, _, err := b.e.Trigger(ctx, "slwo", talon.TriggerRequest{}); !errors.As(err, &te) || te.Code != talon.ENOTFOUND || !strings.Contains(te.Message, `"slow"`) {
		t.Errorf("trigger unknown job: %v, want not_found suggesting slow", err)
	}
	if _, _, err := b.e.Trigger(ctx, "slow", talon.TriggerRequest{Period: "daily/2026-13-01"}); !errors.As(err, &te) || te.Code != talon.EINVALID {
		t.Errorf("trigger bad period: %v, want invalid", err)
	}
}

// TestLostRun: a run left running by a scheduler that is gone is failed
// as lost when a new scheduler starts, and its retries apply.
func TestLostRun(t *testing.T) {
	const sched = `
jobs:
  a:
    period: daily
    retries: {max: 1}
    executor: inprocess
    command: [noop]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{"noop": noop})
	ctx := context.Background()
	res, err := b.st.CreateRuns(ctx, []store.CreateRun{{Job: "a", Period: "daily/2026-11-26", Trigger: "api", Executor: "inprocess", Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].Run.ID
	for _, to := range []talon.State{talon.StateReady, talon.StateRunning} {
		rs, err := b.st.Transition(ctx, []store.Transition{{RunID: id, From: []talon.State{talon.StateBlocked, talon.StateReady}, To: to, Now: now, Owner: "gone", Handle: "x"}})
		if err != nil || rs[0].Err != nil {
			t.Fatal(err, rs)
		}
	}
	b.settle(t)
	runs := b.runs(t, "a")
	if len(runs) != 2 {
		t.Fatalf("%d runs, want the lost one and its retry", len(runs))
	}
	if runs[0].State != talon.StateFailed || !strings.HasPrefix(runs[0].Reason, "lost: ") {
		t.Errorf("lost run: %s (%s), want failed with reason lost: …", runs[0].State, runs[0].Reason)
	}
	if runs[1].State != talon.StateSucceeded || runs[1].Attempt != 2 {
		t.Errorf("retry: %s attempt %d, want succeeded attempt 2", runs[1].State, runs[1].Attempt)
	}
}

// TestBackfill: a range of periods follows the job's calendar, and
// triggering each with its backfill key twice creates nothing new.
func TestBackfill(t *testing.T) {
	const sched = `
calendars:
  uk: {weekend: [sat, sun], holidays: [2026-12-25, 2026-12-28]}
jobs:
  load:
    period: {type: daily, calendar: uk}
    timezone: Europe/London
    constraints: {not_before: "23:59"}
    executor: inprocess
    command: [noop]
`
	b := setup(t, sched, mustTime(t, "2026-12-30T10:00:00Z"), map[string]inprocess.Func{"noop": noop})
	ctx := context.Background()
	keys, err := b.q.PeriodRange(ctx, "load", "daily/2026-12-23", "daily/2026-12-30")
	if err != nil {
		t.Fatal(err)
	}
	want := "daily/2026-12-23 daily/2026-12-24 daily/2026-12-29 daily/2026-12-30"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("range %s, want %s", got, want)
	}
	for round := range 2 {
		for _, k := range keys {
			_, created, err := b.e.Trigger(ctx, "load", talon.TriggerRequest{Period: k, Key: "backfill:" + k})
			if err != nil {
				t.Fatal(err)
			}
			if created != (round == 0) {
				t.Errorf("round %d %s: created %v", round, k, created)
			}
		}
	}
	if n := len(b.runs(t, "load")); n != 4 {
		t.Errorf("%d runs, want 4", n)
	}
	var te *talon.Error
	if _, _, err := b.e.Trigger(ctx, "load", talon.TriggerRequest{Period: "daily/2026-12-26"}); !errors.As(err, &te) || te.Code != talon.EINVALID || !strings.Contains(te.Message, "daily/2026-12-24") {
		t.Errorf("trigger for a holiday: %v, want invalid naming the business day it belongs to", err)
	}
	if _, err := b.q.PeriodRange(ctx, "load", "daily/2026-12-30", "daily/2026-12-23"); !errors.As(err, &te) || te.Code != talon.EINVALID {
		t.Errorf("backwards range: %v, want invalid", err)
	}
	if _, err := b.q.PeriodRange(ctx, "load", "monthly/2026-12", "daily/2026-12-23"); !errors.As(err, &te) || te.Code != talon.EINVALID {
		t.Errorf("wrong period type: %v, want invalid", err)
	}
}

// TestTriggerGrammar: an English trigger's holiday-adjusted run keeps its
// unadjusted period, jitter delays the start but not the period or the
// fire's identity, and a calendar that ends too early is shown to
// operators instead of silently stopping the trigger.
func TestTriggerGrammar(t *testing.T) {
	const sched = `
calendars:
  uk: {weekend: [sat, sun], holidays: [2026-11-13]}
  short: {weekend: [sat, sun], through: 2026-11-20}
jobs:
  payday:
    period: daily
    timezone: Europe/London
    triggers: [{schedule: "15th of month at 09:00 adjust preceding using uk"}]
    executor: inprocess
    command: [noop]
  spread:
    period: daily
    triggers: [{schedule: "daily at 06:00 jitter 30m"}]
    executor: inprocess
    command: [noop]
  ends:
    period: daily
    triggers: [{schedule: "business days at 18:00 using short"}]
    executor: inprocess
    command: [noop]
  short-periods:
    period: {type: daily, calendar: short}
    triggers: [{schedule: "0 7 * * *"}]
    executor: inprocess
    command: [noop]
`
	start := mustTime(t, "2026-11-10T00:00:00Z")
	b := setup(t, sched, start, map[string]inprocess.Func{"noop": noop})
	now := start
	for end := mustTime(t, "2026-11-24T00:00:00Z"); !now.After(end); {
		now = b.at(t, now)
	}
	// The 15th is a Sunday and the 13th a holiday: payday runs on Thursday
	// the 12th, for the period of the 15th.
	pay := b.runs(t, "payday")
	if len(pay) != 1 || pay[0].Period != "daily/2026-11-15" || pay[0].FireTime.Format(time.RFC3339) != "2026-11-12T09:00:00Z" {
		t.Errorf("payday runs %+v, want one for daily/2026-11-15 fired 2026-11-12T09:00Z", pay)
	}
	for _, r := range b.runs(t, "spread") {
		if r.FireTime.Hour() != 6 || r.FireTime.Minute() != 0 {
			t.Errorf("spread fire time %s, want the nominal 06:00", r.FireTime)
		}
		if r.Started == nil || r.Started.Before(r.FireTime) || r.Started.Sub(r.FireTime) >= 30*time.Minute {
			t.Errorf("spread started %v, want within 30m after %s", r.Started, r.FireTime)
		}
		if want := "daily/" + r.FireTime.Format("2006-01-02"); r.Period != want {
			t.Errorf("spread period %s, want %s", r.Period, want)
		}
	}
	if n := len(b.runs(t, "spread")); n != 14 {
		t.Errorf("%d spread runs, want 14", n)
	}
	jobs, err := b.q.Jobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string][]string{}
	for _, j := range jobs {
		errs[j.Name] = j.Errors
	}
	for _, name := range []string{"short-periods", "ends"} {
		if e := errs[name]; len(e) != 1 || !strings.Contains(e[0], "2026-11-20") {
			t.Errorf("%s errors %q, want one naming the calendar's end", name, e)
		}
	}
	if e := errs["spread"]; len(e) != 0 {
		t.Errorf("spread errors %q, want none", e)
	}
}

// TestCancelThroughAnotherScheduler: a cancel that reaches a scheduler
// which does not own the running run is left in the store, and the owner
// stops the run at its next heartbeat.
func TestCancelThroughAnotherScheduler(t *testing.T) {
	const sched = `
jobs:
  slow:
    period: daily
    executor: inprocess
    command: [block]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	block := map[string]inprocess.Func{
		"block": func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return context.Cause(ctx) },
	}
	a := setup(t, sched, now, block)
	other, err := sqlite.Open(context.Background(), a.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	b := setupWith(t, a.e.Schedule(), other, now, block)
	ctx := context.Background()
	run := a.trigger(t, "slow", talon.TriggerRequest{})
	if _, err := a.e.Step(ctx, now); err != nil {
		t.Fatal(err)
	}
	got, err := b.e.Cancel(ctx, run.ID, "bob")
	if err != nil {
		t.Fatalf("cancel through the other scheduler: %v", err)
	}
	if got.State != talon.StateRunning || !strings.Contains(got.Reason, "cancel requested by bob") {
		t.Errorf("cancel answer %s (%s), want running with the request noted", got.State, got.Reason)
	}
	a.at(t, now.Add(11*time.Second))
	r, _ := a.st.GetRun(ctx, run.ID)
	if r.State != talon.StateFailed || r.Reason != "cancelled by bob" {
		t.Errorf("run %s (%s), want failed: cancelled by bob", r.State, r.Reason)
	}
}

// TestShutdownRecordsRuns: when the scheduler stops, the runs it owns are
// stopped and recorded failed at once (their retries created), rather
// than left running for the next scheduler to declare lost.
func TestShutdownRecordsRuns(t *testing.T) {
	const sched = `
jobs:
  slow:
    period: daily
    retries: {max: 1}
    executor: inprocess
    command: [block]
`
	started := make(chan struct{}, 1)
	b := setup(t, sched, time.Now(), map[string]inprocess.Func{
		"block": func(ctx context.Context, _ inprocess.Run) error {
			started <- struct{}{}
			<-ctx.Done()
			return context.Cause(ctx)
		},
	})
	// The loop runs on the real clock here.
	e, err := engine.New(engine.Config{Store: b.st, Schedule: b.e.Schedule(), LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"inprocess": b.funcs}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- e.Loop(ctx) }()
	run, _, err := e.Trigger(context.Background(), "slow", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not start")
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the loop did not stop")
	}
	r, _ := b.st.GetRun(context.Background(), run.ID)
	if r.State != talon.StateFailed || r.Reason != "scheduler shut down" {
		t.Errorf("run %s (%s), want failed: scheduler shut down", r.State, r.Reason)
	}
	if runs := b.runs(t, "slow"); len(runs) != 2 || runs[1].Attempt != 2 {
		t.Errorf("%d runs, want the stopped one and its retry", len(runs))
	}
}

// TestCancelIsNotRetried: an operator's cancel stops the job for good, a
// timeout is retried only when the job says so, other failures are.
func TestCancelIsNotRetried(t *testing.T) {
	const sched = `
jobs:
  slow:
    period: daily
    retries: {max: 2}
    executor: inprocess
    command: [block]
  late:
    period: daily
    timeout: 1m
    retries: {max: 1}
    executor: inprocess
    command: [block]
  late-retried:
    period: daily
    timeout: 1m
    retries: {max: 1, delay: 1h, timeouts: true}
    executor: inprocess
    command: [block]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{
		"block": func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return context.Cause(ctx) },
	})
	ctx := context.Background()
	slow := b.trigger(t, "slow", talon.TriggerRequest{})
	b.trigger(t, "late", talon.TriggerRequest{})
	b.trigger(t, "late-retried", talon.TriggerRequest{})
	if _, err := b.e.Step(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.Cancel(ctx, slow.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	b.at(t, now.Add(2*time.Minute))
	tests := []struct {
		job  string
		runs int
	}{
		{job: "slow", runs: 1},
		{job: "late", runs: 1},
		{job: "late-retried", runs: 2},
	}
	for _, tt := range tests {
		runs := b.runs(t, tt.job)
		if len(runs) != tt.runs {
			t.Errorf("%s: %d runs, want %d", tt.job, len(runs), tt.runs)
			for _, r := range runs {
				t.Logf("  run %d attempt %d %s (%s)", r.ID, r.Attempt, r.State, r.Reason)
			}
		}
	}
}

// TestRetryRules: only a failed or skipped run can be retried, and only
// once (the latest attempt of a chain); the refusal names the run to
// retry instead.
func TestRetryRules(t *testing.T) {
	const sched = `
jobs:
  ok:
    period: daily
    executor: inprocess
    command: [noop]
  bad:
    period: daily
    retries: {max: 1}
    executor: inprocess
    command: [fail]
`
	now := mustTime(t, "2026-11-26T10:00:00Z")
	b := setup(t, sched, now, map[string]inprocess.Func{
		"noop": noop,
		"fail": func(context.Context, inprocess.Run) error { return errors.New("boom") },
	})
	ctx := context.Background()
	good := b.trigger(t, "ok", talon.TriggerRequest{})
	bad := b.trigger(t, "bad", talon.TriggerRequest{})
	b.settle(t)
	var te *talon.Error
	if _, err := b.e.Retry(ctx, good.ID, "alice"); !errors.As(err, &te) || te.Code != talon.ECONFLICT {
		t.Errorf("retry of a succeeded run: %v, want conflict", err)
	}
	// bad failed and was retried automatically (attempt 2, which failed
	// too): attempt 1 is not the one to retry.
	runs := b.runs(t, "bad")
	if len(runs) != 2 {
		t.Fatalf("%d runs of bad, want attempt 1 and its automatic retry", len(runs))
	}
	if _, err := b.e.Retry(ctx, bad.ID, "alice"); !errors.As(err, &te) || te.Code != talon.ECONFLICT || !strings.Contains(te.Message, fmt.Sprintf("already retried by run %d", runs[1].ID)) {
		t.Errorf("retry of an old attempt: %v, want conflict naming run %d", err, runs[1].ID)
	}
	r3, err := b.e.Retry(ctx, runs[1].ID, "alice")
	if err != nil || r3.Attempt != 3 {
		t.Fatalf("retry of the latest attempt: attempt %d, %v; want attempt 3", r3.Attempt, err)
	}
	if _, err := b.e.Retry(ctx, runs[1].ID, "bob"); !errors.As(err, &te) || te.Code != talon.ECONFLICT {
		t.Errorf("second retry of one run: %v, want conflict", err)
	}
	b.settle(t)
	// The manual retry is one more attempt: beyond retries.max, its
	// failure is not retried again.
	if runs := b.runs(t, "bad"); len(runs) != 3 {
		t.Errorf("%d runs of bad, want 3", len(runs))
	}
}

// lossyStore is the real store, except that while on is set CreateRuns
// fails, and Transition applies its batch and then fails as if its
// commit went unanswered: a fault just after recording a run's end.
type lossyStore struct {
	store.Store
	fail sync.Mutex
	on   bool
}

func (f *lossyStore) CreateRuns(ctx context.Context, ps []store.CreateRun) ([]store.Created, error) {
	if f.lossy() {
		return nil, fmt.Errorf("%w: injected", store.ErrUnavailable)
	}
	return f.Store.CreateRuns(ctx, ps)
}

func (f *lossyStore) Transition(ctx context.Context, ts []store.Transition) ([]store.Result, error) {
	res, err := f.Store.Transition(ctx, ts)
	if err == nil && f.lossy() {
		return nil, fmt.Errorf("%w: injected after commit", store.ErrUnavailable)
	}
	return res, err
}

func (f *lossyStore) lossy() bool {
	f.fail.Lock()
	defer f.fail.Unlock()
	return f.on
}

func (f *lossyStore) set(on bool) {
	f.fail.Lock()
	f.on = on
	f.fail.Unlock()
}

// TestFollowUpRunsSurviveAFault: when the store records a run's end but
// its answer is lost, the end is recorded again at the next step, and
// the run's retry and the runs its success triggers are created then,
// exactly once: not lost, not doubled.
func TestFollowUpRunsSurviveAFault(t *testing.T) {
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "schedule.yaml", []byte(`
jobs:
  flaky:
    period: daily
    retries: {max: 1, delay: 1h}
    executor: inprocess
    command: [fail]
  up:
    period: daily
    executor: inprocess
    command: [gated]
  down:
    period: daily
    triggers: [{after: up}]
    executor: inprocess
    command: [noop]
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &lossyStore{Store: st}
	now := mustTime(t, "2026-11-26T10:00:00Z")
	gate := make(chan struct{})
	b := setupWith(t, s, fs, now, map[string]inprocess.Func{
		"noop":  noop,
		"gated": func(context.Context, inprocess.Run) error { <-gate; return nil },
		"fail":  func(context.Context, inprocess.Run) error { <-gate; return errors.New("boom") },
	})
	b.trigger(t, "flaky", talon.TriggerRequest{})
	b.trigger(t, "up", talon.TriggerRequest{})
	if _, err := b.e.Step(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	fs.set(true)
	close(gate)
	// The runs end, and their ends are recorded; the engine does not
	// hear it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for b.runs(t, "flaky")[0].State != talon.StateFailed || b.runs(t, "up")[0].State != talon.StateSucceeded {
		if ctx.Err() != nil {
			t.Fatal("the runs did not end")
		}
		b.e.Step(ctx, now) // errors expected: the answers are lost
	}
	fs.set(false)
	b.settle(t)
	if runs := b.runs(t, "flaky"); len(runs) != 2 || runs[1].RetryOf != runs[0].ID {
		t.Errorf("%d runs of flaky, want the failed one and its retry", len(runs))
	}
	if runs := b.runs(t, "down"); len(runs) != 1 || runs[0].State != talon.StateSucceeded {
		t.Errorf("%d runs of down, want the one up's success triggers, succeeded", len(runs))
	}
}
