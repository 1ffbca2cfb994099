package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

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

func BenchmarkTransition(b *testing.B) {
	storetest.BenchTransition(b, func(b *testing.B) store.Store { return open(b) }, 1000)
}

// BenchmarkAllocate: allocation decisions with 10,000 resources and
// 10,000 blocked runs, in batches of 500.
func BenchmarkAllocate(b *testing.B) {
	storetest.BenchAllocate(b, func(b *testing.B) store.Store { return open(b) }, 10000, 10000, 500)
}
