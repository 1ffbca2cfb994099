package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/server"
	"github.com/talonhq/talon/internal/store"

	// The state stores register themselves by URL scheme.
	_ "github.com/talonhq/talon/internal/store/postgres"
	_ "github.com/talonhq/talon/internal/store/sqlite"
)

// Config is what a Scheduler is opened with. State and Schedule are
// required; every other field has a default.
type Config struct {
	// State is the state store: "sqlite:PATH" (an embedded file, which
	// one scheduler uses at a time) or "postgres://USER@HOST/DB" (shared
	// by several schedulers, in this program's processes or talon
	// serve's).
	State string
	// Schedule says where the jobs come from.
	Schedule Schedule
	// Functions are the Go functions jobs of the inprocess executor run,
	// by the name they give (function: NAME). Two more are built in
	// unless replaced: "noop" returns at once, and "sleep" waits for its
	// argument, a duration (command: [sleep, 2s]).
	Functions map[string]Func
	// Executors are the program's own executors, by the name jobs give
	// in executor:. One may replace "local" (a subprocess, built in);
	// "inprocess" is Functions' and cannot be replaced.
	Executors map[string]Executor
	// Auth are the sources that authenticate callers of Handler, asked in
	// this order after the tokens Talon gives its own runs. Without
	// Auth, and without Anonymous, Handler refuses every request but
	// GET /api/v1/healthz (401).
	Auth []AuthSource
	// Anonymous lets callers without a token do everything, as admin:
	// only for a Handler no other host can reach (one bound to a
	// loopback address). It does not mix with Auth.
	Anonymous bool
	// SecureCookies marks the dashboard's session cookies Secure: set it
	// when Handler is served over HTTPS.
	SecureCookies bool
	// URL is where runs reach the API (TALON_URL): the address the
	// program serves Handler at, for subprocess jobs that report with
	// `talon progress`. Empty: runs are given none.
	URL string
	// LogDir receives run logs (LogDir/JOB/RUN.log); it is created if
	// missing. Default "talon-logs", relative to the working directory.
	LogDir string
	// Lease is how long this scheduler may miss heartbeats before the
	// others sharing its PostgreSQL declare its runs lost: from 3s to
	// 10m, default 30s. Heartbeats come every Lease/3.
	Lease time.Duration
	// Logger receives the scheduler's log; nil means slog.Default().
	Logger *slog.Logger
}

// Schedule says where jobs come from: files, files the program carries
// (an embed.FS), jobs built in Go, or several of these at once. They form
// one schedule: a job in a file may wait for a job built in Go, and a job
// built in Go may use a calendar or resource declared in a file.
type Schedule struct {
	// Paths are schedule YAML files, or directories of them (every
	// *.yaml and *.yml below), as `talon serve --schedule` takes: in FS
	// when it is set, else on disk. Reload reads them again.
	Paths []string
	FS    fs.FS
	// Jobs are jobs built in Go, checked as the files' jobs are (defaults,
	// bounds, names) and named "Schedule.Jobs[i]" in errors. Leave
	// Triggers[i].ID empty: the loader sets it. What only YAML can say
	// (resource where filters, calendars, resource declarations) goes in
	// a file.
	Jobs []talon.Job
}

// Scheduler is Talon embedded in a program: a scheduler over a state
// store, with its API. Open it, mount Handler if you want the API, Run
// it, and Close it.
type Scheduler struct {
	srv    *server.Server
	st     store.Store
	unlock func()
	logger *slog.Logger

	closed atomic.Bool
	mu     sync.Mutex
	// ran is set by the first Run: the engine runs once.
	ran     bool
	stopRun context.CancelFunc
	runDone chan struct{}
	once    sync.Once
}

// Limits of Config.Lease, as talon.yaml has them.
const (
	minLease = 3 * time.Second
	maxLease = 10 * time.Minute
)

// Open loads the schedule, opens the state store and builds the
// scheduler; nothing runs until Run. It waits for a database that is not
// up yet (retrying, with the wait logged) until ctx ends. Register
// constraint and trigger kinds before Open: the schedule is compiled
// here.
//
// A schedule with problems is an error wrapping ScheduleErrors, which
// lists every one with its position.
func Open(ctx context.Context, cfg Config) (*Scheduler, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	fns := inprocess.New()
	for name, f := range cfg.Functions {
		fns.Register(name, f)
	}
	exs := map[string]executor.Executor{
		"local":     local.New(logger),
		"inprocess": fns,
	}
	maps.Copy(exs, cfg.Executors)
	opt := schedule.Options{Executors: slices.Sorted(maps.Keys(exs)), Functions: fns.Names()}
	if _, own := exs["agent"]; !own {
		// Remote agents (talon agent): the server adds their executor,
		// which needs the store, and serves their protocol on Handler.
		opt.Executors = append(opt.Executors, "agent")
		slices.Sort(opt.Executors)
	}
	var texts []schedule.Text
	for i, j := range cfg.Schedule.Jobs {
		data, err := schedule.EncodeJob(j)
		if err != nil {
			return nil, fmt.Errorf("schedule: Schedule.Jobs[%d]: %w", i, err)
		}
		texts = append(texts, schedule.Text{Name: fmt.Sprintf("Schedule.Jobs[%d]", i), Data: data, Generated: true})
	}
	load := func() (*schedule.Schedule, error) {
		s, err := schedule.LoadAll(opt, cfg.Schedule.FS, cfg.Schedule.Paths, texts...)
		if err != nil {
			return nil, fmt.Errorf("schedule: %w", err)
		}
		return s, nil
	}
	sched, err := load()
	if err != nil {
		return nil, err
	}

	unlock, err := server.LockState(cfg.State)
	if err != nil {
		return nil, err
	}
	st, err := server.OpenStore(ctx, cfg.State, logger)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("open state store %s: %w", server.Redact(cfg.State), err)
	}
	srv, err := server.New(ctx, st, server.Options{
		Schedule: sched, Load: load, Executors: exs, Logger: logger, LogDir: cfg.LogDir,
		URL: cfg.URL, Lease: cfg.Lease, Auth: cfg.Auth, Anonymous: cfg.Anonymous,
		SecureCookies: cfg.SecureCookies,
	})
	if err != nil {
		st.Close()
		unlock()
		return nil, err
	}
	if len(cfg.Auth) == 0 && !cfg.Anonymous {
		logger.Warn("talon: no Config.Auth and Anonymous is false: the API refuses every request but healthz")
	}
	return &Scheduler{srv: srv, st: st, unlock: unlock, logger: logger}, nil
}

// check reports what is wrong with cfg before anything is opened.
func (cfg *Config) check() error {
	var errs []error
	if cfg.State == "" {
		errs = append(errs, errors.New(`Config.State is empty: want "sqlite:PATH" or "postgres://USER@HOST/DB"`))
	}
	if len(cfg.Schedule.Paths) == 0 && len(cfg.Schedule.Jobs) == 0 {
		errs = append(errs, errors.New("Config.Schedule has no Paths and no Jobs: name schedule files or build jobs in Go"))
	}
	if cfg.Schedule.FS != nil && len(cfg.Schedule.Paths) == 0 {
		errs = append(errs, errors.New("Config.Schedule.FS is set but Paths is empty: name the files or directories to read in it"))
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Functions)) {
		if name == "" || cfg.Functions[name] == nil {
			errs = append(errs, fmt.Errorf("Config.Functions[%q]: want a name and a function", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Executors)) {
		switch {
		case name == "inprocess":
			errs = append(errs, errors.New(`Config.Executors["inprocess"]: the inprocess executor runs Config.Functions and cannot be replaced`))
		case name == "" || cfg.Executors[name] == nil:
			errs = append(errs, fmt.Errorf("Config.Executors[%q]: want a name and an executor", name))
		}
	}
	if cfg.Anonymous && len(cfg.Auth) > 0 {
		errs = append(errs, errors.New("Config.Anonymous with Config.Auth: callers without a token would bypass the auth sources; keep one of them"))
	}
	for i, a := range cfg.Auth {
		if a == nil {
			errs = append(errs, fmt.Errorf("Config.Auth[%d] is nil", i))
		}
	}
	if cfg.Lease != 0 && (cfg.Lease < minLease || cfg.Lease > maxLease) {
		errs = append(errs, fmt.Errorf("Config.Lease: want between %s and %s, not %s", minLease, maxLease, cfg.Lease))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// ErrClosed is returned by Run and Wait after Close.
var ErrClosed = errors.New("scheduler: closed")

// Run runs the scheduler until ctx ends or Close is called: it fires
// triggers, checks constraints, starts runs and records how they end. On
// return, every run it started has been stopped (functions see their
// context cancelled) and recorded failed ("scheduler shut down"), as far
// as the store allows; a run left running is declared lost by the next
// scheduler. Store outages are logged and retried, not returned. A
// Scheduler runs once: Run returns an error at once when called again,
// or after Close (ErrClosed).
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed.Load():
		s.mu.Unlock()
		return ErrClosed
	case s.ran:
		s.mu.Unlock()
		return errors.New("scheduler: Run called a second time: a Scheduler runs once; Open another")
	}
	ctx, cancel := context.WithCancel(ctx)
	s.ran, s.stopRun, s.runDone = true, cancel, make(chan struct{})
	done := s.runDone
	s.mu.Unlock()
	defer func() {
		cancel()
		close(done)
	}()
	return s.srv.Run(ctx)
}

// Close stops Run if it runs (and waits for it to return), ends the
// API's streams, and closes the state store. Handler answers 503 from
// then on. Close is safe to call more than once.
func (s *Scheduler) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		stop, done := s.stopRun, s.runDone
		s.mu.Unlock()
		if stop != nil {
			stop()
			<-done
		}
		s.srv.Close()
		err = s.st.Close()
		s.unlock()
	})
	return err
}

// Handler is Talon's HTTP API (under /api/v1/) and its dashboard (the
// other paths it serves: /, /runs/, /jobs/, /periods/, /resources,
// /static/, /login, /logout). Every route but GET /api/v1/healthz
// needs a token one of Config.Auth knows (or Config.Anonymous), and the
// token's role must allow the route (see docs/api.md).
//
// Mount it on the program's own mux: mux.Handle("/api/v1/", h) for the
// API alone, or mux.Handle("/", h) for the dashboard too. Its paths are
// absolute, so it must not be mounted under a prefix. It works before
// Run (reads, and triggers that wait for Run) and answers 503 after
// Close.
func (s *Scheduler) Handler() http.Handler {
	api := s.srv.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.closed.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"the scheduler has stopped"}}` + "\n"))
			return
		}
		api.ServeHTTP(w, r)
	})
}

// Trigger creates a run of job, as POST /api/v1/jobs/{name}/trigger
// does: for req.Period (default: the period containing now), with
// req.Params over the job's, once per req.Key when it is set (an
// existing run with that key is returned, created false). The run starts
// blocked; Run checks its constraints. Errors are *talon.Error: not_found
// for an unknown job, invalid for a bad period.
func (s *Scheduler) Trigger(ctx context.Context, job string, req talon.TriggerRequest) (run talon.Run, created bool, err error) {
	return s.srv.Engine.Trigger(ctx, job, req)
}

// Cancel cancels run id on behalf of by, as POST /api/v1/runs/{id}/cancel
// does: a blocked or ready run is skipped; a running one is stopped (a
// function's context is cancelled with cause "cancelled by BY") and
// fails with that reason.
func (s *Scheduler) Cancel(ctx context.Context, id int64, by string) (talon.Run, error) {
	return s.srv.Engine.Cancel(ctx, id, by)
}

// Reload reads the schedule's Paths again (Jobs built in Go stay as they
// are) and reloads the auth sources that can (AuthReloader), as POST
// /api/v1/reload does. A schedule with problems keeps the one in force;
// the error says why. It returns a summary of the schedule in force.
func (s *Scheduler) Reload(ctx context.Context) (string, error) {
	summary, problems, err := s.srv.Reload(ctx)
	if err != nil {
		return "", err
	}
	if len(problems) > 0 {
		return summary, fmt.Errorf("schedule %s, but: %s", summary, strings.Join(problems, "; "))
	}
	return summary, nil
}

// waitFallback is how often Wait reads the run without a wake-up from
// the store, in case one was lost.
const waitFallback = 5 * time.Second

// Wait blocks until run id has ended (succeeded, failed or skipped) and
// returns it, or returns ctx's error (ErrClosed once Close is called).
// It needs no Run in this process: it follows the state store, where
// another scheduler may run it.
func (s *Scheduler) Wait(ctx context.Context, id int64) (talon.Run, error) {
	if s.closed.Load() {
		return talon.Run{}, ErrClosed
	}
	wake, stop := s.st.Subscribe()
	defer stop()
	t := time.NewTimer(waitFallback)
	defer t.Stop()
	for {
		if s.closed.Load() {
			return talon.Run{}, ErrClosed
		}
		r, err := s.st.GetRun(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return talon.Run{}, talon.Errorf(talon.ENOTFOUND, "run %d not found", id)
		case err == nil && r.State.Terminal():
			return r, nil
		case err != nil && ctx.Err() == nil:
			// The store is away: the scheduler retries, and so do we.
			s.logger.Debug("talon: wait: read run", "run", id, "err", err)
		}
		select {
		case <-ctx.Done():
			return talon.Run{}, ctx.Err()
		case _, ok := <-wake:
			if !ok {
				wake = nil // the store closed it: the fallback remains
			}
		case <-t.C:
			t.Reset(waitFallback)
		}
	}
}

// ScheduleError is one problem in a schedule, at a position
// (file:line:col, or "Schedule.Jobs[i]" for a job built in Go).
type ScheduleError = schedule.Error

// ScheduleErrors is every problem found in a schedule, sorted by
// position; Open's and Reload's errors wrap it (errors.As), so a program
// can print each on its own line.
type ScheduleErrors = schedule.ErrorList
