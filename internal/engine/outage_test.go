package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/talontest"
	"github.com/talonhq/talon/internal/view"
)

// TestStoreOutage runs the real loop against PostgreSQL through a TCP
// proxy the test cuts and restores, as when the database restarts or the
// network drops. Stopping the shared PostgreSQL server would break every
// other test running on it; cutting our own connections is the same
// fault as far as the scheduler can tell.
//
// While the store is away: the API answers 503 with code "unavailable",
// health says why, and the loop keeps stepping with backoff. A run that
// finished meanwhile is recorded once the store is back (its completion
// is not lost), and scheduling resumes by itself: the completion trigger
// it fires starts the next job.
func TestStoreOutage(t *testing.T) {
	pgURL := talontest.PostgresURL(t)
	px := talontest.NewProxy(t, pgURL)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, px.URL)
	if err != nil {
		t.Fatalf("open store through the proxy: %v", err)
	}
	t.Cleanup(func() { st.Close() })

	sched, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(`
jobs:
  extract:
    period: daily
    poll: 1h
    executor: inprocess
    command: [gated]
  load:
    period: daily
    poll: 1h
    executor: inprocess
    command: [noop]
    triggers: [{after: extract}]
    constraints:
      after: [extract]
`))
	if err != nil {
		t.Fatalf("load schedule: %v", err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	ip := inprocess.New()
	ip.Register("gated", func(ctx context.Context, r inprocess.Run) error {
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})

	var stepErrs atomic.Int64
	logger := slog.New(&countHandler{
		Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}),
		msg:     "scheduler step", n: &stepErrs,
	})
	e, err := engine.New(engine.Config{
		Store: st, Schedule: sched, Logger: logger, LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"inprocess": ip},
	})
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan error, 1)
	go func() { loopDone <- e.Loop(loopCtx) }()
	defer func() {
		stopLoop()
		select {
		case err := <-loopDone:
			if err != nil {
				t.Errorf("loop: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("loop did not stop within 10s of its context ending")
		}
	}()

	hs := httptest.NewServer(api.NewServer(api.Join(query.New(st, e, nil), e), logger))
	defer hs.Close()
	c := api.NewClient(hs.URL, &http.Client{Timeout: 5 * time.Second})

	run, _, err := c.Trigger(ctx, "extract", talon.TriggerRequest{})
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("run %d did not start", run.ID)
	}
	waitFor(t, 10*time.Second, "run to be recorded running", func() (bool, string) {
		d, err := c.Run(ctx, run.ID)
		if err != nil {
			return false, err.Error()
		}
		return d.State == talon.StateRunning, string(d.State)
	})

	// The store goes away; the run finishes while it is away.
	px.SetDown(true)
	before := stepErrs.Load()
	close(release)
	waitFor(t, 15*time.Second, "the loop to fail steps with backoff", func() (bool, string) {
		n := stepErrs.Load() - before
		ok, why := e.Healthy()
		return n >= 3 && !ok, why
	})

	for _, path := range []string{"runs", "healthz"} {
		status, code, msg := getError(t, hs.URL+api.Prefix+path)
		if status != http.StatusServiceUnavailable || code != talon.EUNAVAILABLE {
			t.Errorf("GET %s during the outage: %d %q %q, want 503 %q", path, status, code, msg, talon.EUNAVAILABLE)
		}
	}
	var te *talon.Error
	if _, err := c.Runs(ctx, view.RunFilter{}); !errors.As(err, &te) || te.Code != talon.EUNAVAILABLE {
		t.Errorf("client Runs during the outage: %v, want code %q", err, talon.EUNAVAILABLE)
	}

	// The store comes back: nothing more than time is needed.
	upAt := time.Now()
	px.SetDown(false)
	var got view.RunDetail
	waitFor(t, 20*time.Second, "the finished run to be recorded", func() (bool, string) {
		d, err := c.Run(ctx, run.ID)
		if err != nil {
			return false, err.Error()
		}
		got = d
		return d.State.Terminal(), string(d.State)
	})
	if got.State != talon.StateSucceeded {
		t.Fatalf("run %d is %s (%s), want succeeded", got.ID, got.State, got.Reason)
	}
	if got.Finished == nil || !got.Finished.Before(upAt) {
		t.Errorf("run %d finished at %v, want during the outage (before %v): the completion time is when it ended, not when it could be written", got.ID, got.Finished, upAt)
	}
	waitFor(t, 10*time.Second, "load to run after extract", func() (bool, string) {
		runs, err := c.Runs(ctx, view.RunFilter{Job: "load"})
		if err != nil || len(runs) == 0 {
			return false, "no run of load"
		}
		return runs[0].State == talon.StateSucceeded, string(runs[0].State) + ": " + runs[0].Reason
	})
	if err := c.Health(ctx); err != nil {
		t.Errorf("health after the outage: %v", err)
	}
	all, err := c.Runs(ctx, view.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("%d runs after the outage, want 2 (extract, load): %+v", len(all), all)
	}
}

// getError GETs u and returns the status and the API error's code and
// message.
func getError(t *testing.T, u string) (status int, code, msg string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(body, &e)
	return resp.StatusCode, e.Error.Code, e.Error.Message
}

// waitFor polls cond until it holds, failing the test after timeout with
// cond's last word.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", timeout, what, last)
		}
		<-tick.C
	}
}

// countHandler counts the records with one message, and logs them all.
type countHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h *countHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countHandler{Handler: h.Handler.WithAttrs(as), msg: h.msg, n: h.n}
}

func (h *countHandler) WithGroup(name string) slog.Handler {
	return &countHandler{Handler: h.Handler.WithGroup(name), msg: h.msg, n: h.n}
}
