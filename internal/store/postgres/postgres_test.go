package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"

	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/store/storetest"
	"github.com/talonhq/talon/internal/talontest"
)

const howTo = "set TALON_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests"

// baseURL returns the test database's URL, skipping the test when there
// is none, except in CI, which must never pass without PostgreSQL.
func baseURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TALON_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("TALON_TEST_POSTGRES is not set, and CI must run the PostgreSQL tests: %s", howTo)
		}
		tb.Skip(howTo)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL at TALON_TEST_POSTGRES is unreachable: %v", err)
		}
		tb.Skipf("PostgreSQL at TALON_TEST_POSTGRES is unreachable (%v); %s", err, howTo)
	}
	conn.Close(ctx)
	return u
}

// withParams adds run-time parameters to a DSN in URL or key=value form.
func withParams(dsn string, params map[string]string) string {
	if u, err := url.Parse(dsn); err == nil && strings.Contains(dsn, "://") {
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for k, v := range params {
		dsn += " " + k + "=" + v
	}
	return dsn
}

// schema gives each test its own schema, dropped when the test ends.
func schema(tb testing.TB, base string) string {
	return storetest.PerTest(tb, func() string {
		b := make([]byte, 6)
		rand.Read(b)
		name := "talon_test_" + hex.EncodeToString(b)
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, base)
			if err != nil {
				tb.Errorf("drop schema %s: %v", name, err)
				return
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
				tb.Errorf("drop schema %s: %v", name, err)
			}
		})
		return name
	})
}

func open(tb testing.TB) store.Store {
	return openWith(tb, nil)
}

func openWith(tb testing.TB, extra map[string]string) *postgres.DB {
	base := baseURL(tb)
	params := map[string]string{"search_path": schema(tb, base)}
	for k, v := range extra {
		params[k] = v
	}
	db, err := postgres.Open(context.Background(), withParams(base, params))
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	baseURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestOpenByURL(t *testing.T) {
	base := baseURL(t)
	for _, scheme := range []string{"postgres", "postgresql"} {
		t.Run(scheme, func(t *testing.T) {
			u := withParams(base, map[string]string{"search_path": schema(t, base)})
			u = scheme + u[strings.Index(u, ":"):]
			s, err := store.Open(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, ok := s.(*postgres.DB); !ok {
				t.Fatalf("store.Open returned %T", s)
			}
		})
	}
}

func TestSchemaInOptions(t *testing.T) {
	base := baseURL(t)
	name := schema(t, base)
	db, err := postgres.Open(t.Context(), withParams(base, map[string]string{"options": "-csearch_path=" + name}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateRuns(t.Context(), []store.CreateRun{{Job: "a", Period: "daily/2026-11-26"}}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{name, "runs"}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Fatalf("runs in schema %s: %d, %v", name, n, err)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	base := baseURL(t)
	u := withParams(base, map[string]string{"search_path": schema(t, base)})
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			db, err := postgres.Open(t.Context(), u)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("concurrent open: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("concurrent opens did not finish")
		}
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there, the connection is refused.
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
}

func TestClosedIsUnavailable(t *testing.T) {
	db := openWith(t, nil)
	db.Close()
	if _, err := db.GetRun(t.Context(), 1); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetRun on a closed store: %v, want ErrUnavailable", err)
	}
}

// TestReconnect kills the store's server connections, as a PostgreSQL
// restart or failover would, and checks that it keeps working: the pool
// dials new connections by itself.
func TestReconnect(t *testing.T) {
	base := baseURL(t)
	app := "talon_reconnect_" + schema(t, base)
	db := openWith(t, map[string]string{"application_name": app})
	ctx := t.Context()
	out, err := db.CreateRuns(ctx, []store.CreateRun{{Job: "a", Period: "daily/2026-11-26"}})
	if err != nil {
		t.Fatal(err)
	}
	id := out[0].Run.ID
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for round := range 3 {
		var killed int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1`, app).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed == 0 {
			t.Fatalf("round %d: no connection of the store to terminate", round)
		}
		// Every call either works or says the store is unavailable, and
		// one works within a few tries.
		var ok bool
		for try := range 5 {
			_, err := db.GetRun(ctx, id)
			if err == nil {
				ok = true
				break
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("round %d try %d: %v, want ErrUnavailable", round, try, err)
			}
		}
		if !ok {
			t.Fatalf("round %d: store did not reconnect", round)
		}
	}
}

func BenchmarkCreateRuns10k(b *testing.B) {
	storetest.BenchCreateRuns(b, func(b *testing.B) store.Store { return open(b) }, 10000)
}

// BenchmarkLogWriter: a chatty run's output stored in batches.
func BenchmarkLogWriter(b *testing.B) {
	storetest.BenchLogWriter(b, func(b *testing.B) store.Store { return open(b) })
}

func BenchmarkTransition(b *testing.B) {
	storetest.BenchTransition(b, func(b *testing.B) store.Store { return open(b) }, 1000)
}

// BenchmarkAllocate: allocation decisions with 10,000 resources and
// 10,000 blocked runs, in batches of 500.
func BenchmarkAllocate(b *testing.B) {
	storetest.BenchAllocate(b, func(b *testing.B) store.Store { return open(b) }, 10000, 10000, 500)
}

// TestPingOutage cuts the store off from its server through a proxy, as a
// database restart or a network drop would: Ping says unavailable at
// once, not after a timeout, and answers again when the server is back.
func TestPingOutage(t *testing.T) {
	px := talontest.NewProxy(t, talontest.PostgresURL(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, px.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping before the outage: %v", err)
	}
	px.SetDown(true)
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	err = db.Ping(pctx)
	late := pctx.Err() != nil
	pcancel()
	if !errors.Is(err, store.ErrUnavailable) || late {
		t.Fatalf("Ping during the outage: %v (deadline passed: %v), want ErrUnavailable at once", err, late)
	}
	px.SetDown(false)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after the outage: %v", err)
	}
}

// TestListenReconnect kills the notifier's listening connection, as a
// PostgreSQL restart would: the subscribers are woken once it listens
// again (what was notified meanwhile is lost, so they must read), and
// later writes wake them again.
func TestListenReconnect(t *testing.T) {
	base := baseURL(t)
	app := "talon_listen_" + schema(t, base)
	db := openWith(t, map[string]string{"application_name": app})
	ctx := t.Context()
	wake, stop := db.Subscribe()
	defer stop()
	waitWake := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake-up after %s", what)
		}
	}
	waitWake("subscribing")
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for round := range 2 {
		var killed int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("round %d: %d listening connections terminated, want 1", round, killed)
		}
		waitWake("the listening connection was terminated")
		if _, err := db.CreateRuns(ctx, []store.CreateRun{{Job: "a", Period: "daily/2026-11-26"}}); err != nil {
			t.Fatal(err)
		}
		waitWake("a write after the reconnection")
	}
}

// TestMigrateEvents: a schema written before migration 0005 keeps its
// history, read with the types and the job and period of each event.
func TestMigrateEvents(t *testing.T) {
	base := baseURL(t)
	name := schema(t, base)
	u := withParams(base, map[string]string{"search_path": name})
	ctx := t.Context()
	raw, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE SCHEMA ` + pgx.Identifier{name}.Sanitize())
	exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`)
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range names {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		if v >= 5 {
			continue
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version) VALUES ($1)`, v)
	}
	exec(`INSERT INTO runs (job, period, state, created) VALUES ('load', 'daily/2026-11-26', 'blocked', now())`)
	exec(`INSERT INTO events (run_id, time, from_state, to_state, reason)
		SELECT id, now(), '', 'blocked', 'fired' FROM runs UNION ALL SELECT id, now(), 'blocked', 'blocked', 'waiting for a' FROM runs`)

	db, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, err := db.EventsAfter(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("events after the migration: %+v", evs)
	}
	for i, want := range []talon.EventType{talon.EventTransition, talon.EventDecision} {
		if e := evs[i]; e.Type != want || e.Job != "load" || e.Period != "daily/2026-11-26" {
			t.Errorf("event %d = %+v, want a %s of load daily/2026-11-26", i, e, want)
		}
	}
}

// BenchmarkLifecycle: one run at a time, created, started and ended, as
// a trigger over the API lives.
func BenchmarkLifecycle(b *testing.B) {
	storetest.BenchLifecycle(b, func(b *testing.B) store.Store { return open(b) })
}
