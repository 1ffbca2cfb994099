package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/talontest"
)

// TestHealthFollowsTheStore serves a real engine on PostgreSQL through a
// proxy the test cuts. The moment the database is away, healthz says so
// (503, naming the state store), as the runs routes do — not only once
// the scheduler's next step has failed, which takes up to its
// housekeeping interval. When the database is back, healthz is 200 again.
func TestHealthFollowsTheStore(t *testing.T) {
	px := talontest.NewProxy(t, talontest.PostgresURL(t))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, px.URL)
	if err != nil {
		t.Fatalf("open store through the proxy: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	sched, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte("jobs:\n  a:\n    command: ['true']\n"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	e, err := engine.New(engine.Config{Store: st, Schedule: sched, Logger: logger, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// One step, as the loop takes at start; the loop's next one would come
	// at its housekeeping interval (10s by default), and none comes here,
	// so healthz cannot lean on a step failing.
	if _, err := e.Step(ctx, time.Now()); err != nil {
		t.Fatalf("first step: %v", err)
	}
	hs := httptest.NewServer(api.NewServer(api.Join(query.New(st, e, nil), e), logger))
	t.Cleanup(hs.Close)

	waitHealth(t, hs.URL, http.StatusOK, 10*time.Second)

	px.SetDown(true)
	for _, path := range []string{"runs", "healthz"} {
		status, code, msg := get(t, hs.URL+api.Prefix+path)
		if status != http.StatusServiceUnavailable || code != talon.EUNAVAILABLE {
			t.Errorf("GET %s the moment the store is away: %d %q %q, want 503 %s", path, status, code, msg, talon.EUNAVAILABLE)
		}
		if path == "healthz" && !strings.Contains(msg, "state store") {
			t.Errorf("healthz says %q; want it to name the state store", msg)
		}
	}

	px.SetDown(false)
	waitHealth(t, hs.URL, http.StatusOK, 10*time.Second)
}

// get GETs u and returns its status and, for an error answer, its code
// and message.
func get(t *testing.T, u string) (status int, code, msg string) {
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

// waitHealth polls healthz until it answers status, failing after timeout.
func waitHealth(t *testing.T, base string, status int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, code, msg := get(t, base+api.Prefix+"healthz")
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz answered %d %s %q for %v; want %d", got, code, msg, timeout, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
