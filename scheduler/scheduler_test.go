package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/talontest"
	"github.com/talonhq/talon/scheduler"
)

// bound is how long a test waits for anything the scheduler does.
const bound = 30 * time.Second

// stores runs f against SQLite and, when TALON_TEST_POSTGRES is set (or
// CI=true, where its absence fails), PostgreSQL.
func stores(t *testing.T, f func(t *testing.T, state string)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, "sqlite:"+filepath.Join(t.TempDir(), "talon.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, talontest.PostgresURL(t))
	})
}

// testLogger writes the scheduler's log to the test's.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start opens a scheduler with cfg (its log and run logs the test's)
// and runs it until the test ends; Close must stop it and Run must then
// return nil (or ErrClosed, when Close came first).
func start(t *testing.T, cfg scheduler.Config) *scheduler.Scheduler {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.LogDir == "" {
		cfg.LogDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	s, err := scheduler.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-ran:
			// ErrClosed: the test ended before Run began.
			if err != nil && !errors.Is(err, scheduler.ErrClosed) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(bound):
			t.Errorf("Run did not return after Close")
		}
	})
	return s
}

// receive waits for a value on ch, bounded.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("%s: nothing within %s", what, bound)
		panic("unreachable")
	}
}

func wait(t *testing.T, s *scheduler.Scheduler, id int64) talon.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	r, err := s.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait(%d): %v", id, err)
	}
	return r
}

func trigger(t *testing.T, s *scheduler.Scheduler, job string) talon.Run {
	t.Helper()
	r, created, err := s.Trigger(t.Context(), job, talon.TriggerRequest{})
	if err != nil || !created {
		t.Fatalf("Trigger(%s) = %v, %v", job, created, err)
	}
	return r
}

// TestFunctions: a function reports its progress through the Run it is
// given, which the API shows at once; a function is cancelled through
// its context, with the operator's name as the cause, and its run fails
// with that reason; params and the run's identity reach the function.
func TestFunctions(t *testing.T) {
	stores(t, func(t *testing.T, state string) {
		reported, release := make(chan int64, 1), make(chan struct{})
		started, cause := make(chan struct{}, 1), make(chan string, 1)
		params := make(chan string, 1)
		s := start(t, scheduler.Config{
			State: state,
			Schedule: scheduler.Schedule{Jobs: []talon.Job{
				{Name: "progress", Executor: "inprocess", Function: "report", Params: map[string]any{"size": 3}},
				{Name: "cancel", Executor: "inprocess", Function: "block"},
			}},
			Functions: map[string]scheduler.Func{
				"report": func(ctx context.Context, r scheduler.Run) error {
					params <- string(r.Params)
					r.Progress(40)
					reported <- r.Run.ID
					select {
					case <-release:
						return nil
					case <-ctx.Done():
						return context.Cause(ctx)
					}
				},
				"block": func(ctx context.Context, r scheduler.Run) error {
					started <- struct{}{}
					<-ctx.Done()
					cause <- context.Cause(ctx).Error()
					return context.Cause(ctx)
				},
			},
			Anonymous: true,
		})
		mux := http.NewServeMux()
		mux.Handle("/api/v1/", s.Handler())
		srv := httptest.NewServer(mux)
		defer srv.Close()

		p := trigger(t, s, "progress")
		if id := receive(t, reported, "progress reported"); id != p.ID {
			t.Fatalf("function ran for run %d, want %d", id, p.ID)
		}
		if got := receive(t, params, "params"); got != `{"size":3}` {
			t.Errorf("params = %s", got)
		}
		// Progress has been stored when it returns: the API shows it.
		var d struct {
			State    talon.State     `json:"state"`
			Progress *talon.Progress `json:"progress"`
		}
		getJSON(t, srv.URL+fmt.Sprintf("/api/v1/runs/%d", p.ID), "", http.StatusOK, &d)
		if d.State != talon.StateRunning || d.Progress == nil || d.Progress.Percent == nil || *d.Progress.Percent != 40 {
			t.Errorf("run while it reports = %s, %+v; want running at 40%%", d.State, d.Progress)
		}

		c := trigger(t, s, "cancel")
		receive(t, started, "cancel's function started")
		if _, err := s.Cancel(t.Context(), c.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, cause, "cancel's cause"); got != "cancelled by alice" {
			t.Errorf("function's cause = %q", got)
		}
		if r := wait(t, s, c.ID); r.State != talon.StateFailed || r.Reason != "cancelled by alice" {
			t.Errorf("cancelled run = %s %q, want failed, cancelled by alice", r.State, r.Reason)
		}

		close(release)
		if r := wait(t, s, p.ID); r.State != talon.StateSucceeded {
			t.Errorf("progress run = %s %q, want succeeded", r.State, r.Reason)
		}
	})
}

// gate is a constraint kind of the test's: gate: true passes, gate:
// false cancels the run, with a reason; anything else is a schedule
// error. It records the runs it was asked about in gateSeen (run id →
// "JOB PERIOD").
type gate struct {
	open bool
}

var gateSeen sync.Map

func (g gate) Name() string { return "gate" }

func (g gate) Check(_ context.Context, in scheduler.ConstraintInput) scheduler.Answer {
	gateSeen.Store(in.Run.ID, in.Job.Name+" "+in.Period.Key())
	if g.open {
		return scheduler.Answer{Action: talon.ActionPass, Reason: "open"}
	}
	return scheduler.Answer{Action: talon.ActionCancel, Reason: "the gate is shut"}
}

// batch is an executor of the test's: it runs a job's command as a
// no-op that succeeds, records what it was given, and starts on the
// engine's loop (Quick).
type batch struct {
	specs chan<- scheduler.Spec
}

func (b batch) Quick() bool { return true }

func (b batch) Start(_ context.Context, s scheduler.Spec) (scheduler.Process, error) {
	b.specs <- s
	return done{handle: fmt.Sprintf("batch-%d", s.Run.ID)}, nil
}

func (b batch) Recover(_ context.Context, _ talon.Run, handle string) (scheduler.Process, error) {
	return nil, fmt.Errorf("%w: batch %s", scheduler.ErrLost, handle)
}

type done struct{ handle string }

func (d done) Handle() string { return d.handle }
func (d done) Wait() scheduler.Outcome {
	return scheduler.Outcome{Succeeded: true, Reason: "batch done"}
}
func (d done) Cancel(error) {}

var registerGate = sync.OnceFunc(func() {
	scheduler.RegisterConstraint("gate", func(v any) (scheduler.Constraint, error) {
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("gate: want true or false, not %v", v)
		}
		return gate{open: b}, nil
	})
})

// TestCustomConstraintAndExecutor: a constraint kind registered through
// the package answers for runs, in a schedule file and in jobs built in
// Go alike; an executor given in Config runs the jobs that name it, with
// the run's environment.
func TestCustomConstraintAndExecutor(t *testing.T) {
	registerGate()
	stores(t, func(t *testing.T, state string) {
		dir := t.TempDir()
		file := filepath.Join(dir, "jobs.yaml")
		if err := os.WriteFile(file, []byte("jobs:\n  shut:\n    executor: batch\n    command: [work]\n    constraints: {gate: false}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		specs := make(chan scheduler.Spec, 4)
		s := start(t, scheduler.Config{
			State: state,
			Schedule: scheduler.Schedule{Paths: []string{file}, Jobs: []talon.Job{{
				Name: "open", Executor: "batch", Command: []string{"work", "--all"},
				Constraints: []talon.ConstraintSpec{{Kind: "gate", Value: true}},
			}}},
			Executors: map[string]scheduler.Executor{"batch": batch{specs: specs}},
			Anonymous: true,
		})

		o := trigger(t, s, "open")
		spec := receive(t, specs, "batch start")
		if spec.Run.ID != o.ID || !slices.Equal(spec.Job.Command, []string{"work", "--all"}) || !slices.Contains(spec.Env, fmt.Sprintf("TALON_RUN_ID=%d", o.ID)) {
			t.Errorf("spec = run %d, command %q, env %q", spec.Run.ID, spec.Job.Command, spec.Env)
		}
		r := wait(t, s, o.ID)
		if r.State != talon.StateSucceeded || r.Reason != "batch done" || r.Handle != fmt.Sprintf("batch-%d", o.ID) {
			t.Errorf("open = %s %q handle %q", r.State, r.Reason, r.Handle)
		}
		if got, _ := gateSeen.Load(o.ID); got != "open "+o.Period {
			t.Errorf("gate saw %q for run %d, want %q", got, o.ID, "open "+o.Period)
		}

		sh := trigger(t, s, "shut")
		if r := wait(t, s, sh.ID); r.State != talon.StateSkipped || r.Reason != "gate: the gate is shut" {
			t.Errorf("shut = %s %q, want skipped by the gate", r.State, r.Reason)
		}
		select {
		case spec := <-specs:
			t.Errorf("a skipped run started: %+v", spec.Run)
		default:
		}
	})
}

// TestOpenErrors: a bad config or schedule is an error before anything
// is opened, saying what and where; a schedule's problems are all
// listed (ScheduleErrors).
func TestOpenErrors(t *testing.T) {
	registerGate()
	state := "sqlite:" + filepath.Join(t.TempDir(), "talon.db")
	tests := []struct {
		name string
		cfg  scheduler.Config
		want []string
	}{
		{
			name: "empty",
			want: []string{
				`Config.State is empty: want "sqlite:PATH" or "postgres://USER@HOST/DB"`,
				`Config.Schedule has no Paths and no Jobs`,
			},
		},
		{
			name: "executors, auth, lease",
			cfg: scheduler.Config{State: state, Schedule: scheduler.Schedule{Jobs: []talon.Job{{Name: "a", Command: []string{"x"}}}},
				Executors: map[string]scheduler.Executor{"inprocess": batch{}}, Anonymous: true,
				Auth: []scheduler.AuthSource{mustTokens(t)}, Lease: time.Second},
			want: []string{
				`Config.Executors["inprocess"]: the inprocess executor runs Config.Functions and cannot be replaced`,
				`Config.Anonymous with Config.Auth`,
				`Config.Lease: want between 3s and 10m0s, not 1s`,
			},
		},
		{
			name: "schedule",
			cfg: scheduler.Config{State: state, Schedule: scheduler.Schedule{Jobs: []talon.Job{
				{Name: "a", Executor: "inprocess", Function: "reprot"},
				{Name: "b", Command: []string{"x"}, Constraints: []talon.ConstraintSpec{{Kind: "gate", Value: "ajar"}}},
				{Name: "c", Executor: "kubernetes", Command: []string{"x"}},
			}}, Functions: map[string]scheduler.Func{"report": func(context.Context, scheduler.Run) error { return nil }}},
			want: []string{
				`Schedule.Jobs[0]: job "a": unknown function "reprot" (did you mean "report"?)`,
				`Schedule.Jobs[1]: job "b": constraint gate: want true or false, not ajar`,
				`Schedule.Jobs[2]: job "c": executor: unknown executor "kubernetes" (want one of agent, inprocess, local)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scheduler.Open(t.Context(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error()+"\n"+listed(err), w) {
					t.Errorf("error lacks %q:\n%v\n%s", w, err, listed(err))
				}
			}
		})
	}
}

// listed prints every error of a ScheduleErrors, one a line.
func listed(err error) string {
	var list scheduler.ScheduleErrors
	if !errors.As(err, &list) {
		return ""
	}
	var b strings.Builder
	for _, e := range list {
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}

// A Scheduler runs once, and not after Close; Handler answers 503 after
// Close; Close twice is fine. A second scheduler on the same SQLite file
// is refused while the first is open.
func TestLifecycle(t *testing.T) {
	state := "sqlite:" + filepath.Join(t.TempDir(), "talon.db")
	cfg := scheduler.Config{State: state, Schedule: scheduler.Schedule{Jobs: []talon.Job{{Name: "noop", Executor: "inprocess"}}},
		Anonymous: true, LogDir: t.TempDir(), Logger: testLogger(t)}
	s, err := scheduler.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scheduler.Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "is in use by another Talon scheduler") {
		t.Errorf("second Open on the file = %v, want in use", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	r := trigger(t, s, "noop")
	if r := wait(t, s, r.ID); r.State != talon.StateSucceeded {
		t.Errorf("noop = %s %q", r.State, r.Reason)
	}
	cancel()
	if err := receive(t, ran, "Run's return"); err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := s.Run(t.Context()); err == nil {
		t.Errorf("a second Run succeeded")
	}
	h := s.Handler()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, scheduler.ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Wait(t.Context(), r.ID); !errors.Is(err, scheduler.ErrClosed) {
		t.Errorf("Wait after Close = %v, want ErrClosed", err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/jobs", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("Handler after Close: %d %s", rec.Code, rec.Body)
	}
	// The file is free again.
	s2, err := scheduler.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func mustTokens(t *testing.T, entries ...scheduler.TokenEntry) scheduler.AuthSource {
	t.Helper()
	if len(entries) == 0 {
		entries = []scheduler.TokenEntry{{Name: "x", Role: scheduler.RoleViewer, TokenSHA256: sha("x")}}
	}
	src, err := scheduler.NewTokens(entries)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// getJSON GETs url with token (none when empty), checks the status and
// decodes the body into out.
func getJSON(t *testing.T, url, token string, status int, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
}

// TestStopsFunctions: a function's context is cancelled with the
// reason when its job's timeout passes, and when the scheduler is closed
// under it; both runs are recorded failed with that reason, the second
// one as the next scheduler on the store finds it.
func TestStopsFunctions(t *testing.T) {
	stores(t, func(t *testing.T, state string) {
		causes := make(chan string, 2)
		started := make(chan int64, 2)
		block := func(ctx context.Context, r scheduler.Run) error {
			started <- r.Run.ID
			<-ctx.Done()
			causes <- context.Cause(ctx).Error()
			return nil // swallowed: the run fails all the same
		}
		cfg := scheduler.Config{
			State: state,
			Schedule: scheduler.Schedule{Jobs: []talon.Job{
				{Name: "slow", Executor: "inprocess", Function: "block", Timeout: time.Second},
				{Name: "long", Executor: "inprocess", Function: "block"},
			}},
			Functions: map[string]scheduler.Func{"block": block},
			Anonymous: true,
			LogDir:    t.TempDir(),
			Logger:    testLogger(t),
		}
		s, err := scheduler.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ran := make(chan error, 1)
		go func() { ran <- s.Run(context.Background()) }()

		slow := trigger(t, s, "slow")
		receive(t, started, "slow started")
		if got := receive(t, causes, "slow's cause"); got != "timeout after 1s" {
			t.Errorf("slow's cause = %q", got)
		}
		if r := wait(t, s, slow.ID); r.State != talon.StateFailed || !strings.Contains(r.Reason, "timeout after 1s") {
			t.Errorf("slow = %s %q, want failed by its timeout", r.State, r.Reason)
		}

		long := trigger(t, s, "long")
		receive(t, started, "long started")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := receive(t, ran, "Run's return"); err != nil {
			t.Errorf("Run = %v", err)
		}
		if got := receive(t, causes, "long's cause"); got != "scheduler shut down" {
			t.Errorf("long's cause = %q", got)
		}
		next := start(t, cfg)
		if r := wait(t, next, long.ID); r.State != talon.StateFailed || r.Reason != "scheduler shut down" {
			t.Errorf("long = %s %q, want failed, scheduler shut down", r.State, r.Reason)
		}
	})
}
