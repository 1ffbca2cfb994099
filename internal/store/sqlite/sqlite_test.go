package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/store/storetest"
)

// open gives each test its own file; later calls in one test open more
// handles on it, as separate processes would.
func open(tb testing.TB) store.Store {
	path := storetest.PerTest(tb, func() string { return filepath.Join(tb.TempDir(), "talon.db") })
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestOpenByURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	s, err := store.Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*sqlite.DB); !ok {
		t.Fatalf("store.Open returned %T", s)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	errs := make(chan error, 4)
	dbs := make(chan *sqlite.DB, 4)
	for range 4 {
		go func() {
			db, err := sqlite.Open(t.Context(), path)
			errs <- err
			dbs <- db
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
		if db := <-dbs; db != nil {
			db.Close()
		}
	}
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	db.Close()
}

func TestOpenBad(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{name: "empty", path: ""},
		{name: "memory", path: ":memory:"},
		{name: "missing directory", path: filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), tt.path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
		})
	}
}

func TestClosedIsUnavailable(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.GetRun(t.Context(), 1); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetRun on a closed store: %v, want ErrUnavailable", err)
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

// TestMigrateEvents: a file written before migration 0005 keeps its
// history, read with the types and the job and period of each event.
func TestMigrateEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`)
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		if v >= 5 {
			continue
		}
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, applied) VALUES (?, 0)`, v)
	}
	exec(`INSERT INTO runs (id, job, period, state, created) VALUES (7, 'load', 'daily/2026-11-26', 'blocked', 0)`)
	exec(`INSERT INTO events (run_id, time, from_state, to_state, reason) VALUES (7, 0, '', 'blocked', 'fired'), (7, 1, 'blocked', 'blocked', 'waiting for a')`)
	raw.Close()

	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, err := db.EventsAfter(t.Context(), 0, 10)
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
