package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// TestCheckpointsInBackground: commits leave the WAL to the store's
// checkpointer instead of copying it back themselves at SQLite's 1,000
// pages, and the checkpointer copies all of it back once it runs.
func TestCheckpointsInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "talon.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ran := make(chan checkpointResult)
	release := make(chan struct{})
	var released bool
	defer func() { // before Close, which waits for the checkpointer
		if !released {
			close(release)
		}
	}()
	db.ckpt.after = func(r checkpointResult) {
		select {
		case ran <- r:
		case <-time.After(10 * time.Second): // the test has given up
		}
		<-release
	}
	next := func() checkpointResult {
		t.Helper()
		select {
		case r := <-ran:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no background checkpoint within 10 s")
		}
		return checkpointResult{}
	}

	create := func(i int) {
		t.Helper()
		_, err := db.CreateRuns(ctx, []store.CreateRun{{
			Job: "j", Period: "2026-11-30", State: talon.StateBlocked, Trigger: "api", Executor: "local",
			Key:    fmt.Sprintf("k%d", i),
			Params: map[string]string{"pad": strings.Repeat("p", 8000)}, Now: time.Now(),
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	create(0)
	next() // the checkpointer now waits in after, as if it had fallen behind

	// More than SQLite's default of 1,000 pages, in separate commits.
	for i := 1; i <= 1600; i++ {
		create(i)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if pages := fi.Size() / 4096; pages < 1500 || pages > walLimit+100 {
		t.Fatalf("WAL of %d pages after 1,600 commits of 8 KB with the checkpointer held: want more than 1,000 (no commit checkpointed) and at most about %d", pages, walLimit)
	}

	close(release)
	released = true
	r := next()
	if r.log < 1500 || r.copied != r.log {
		t.Fatalf("background checkpoint: %d of %d WAL pages copied back, want all of more than 1,500", r.copied, r.log)
	}
	var limit int
	if err := db.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit != walLimit {
		t.Fatalf("writer's wal_autocheckpoint %d, want %d", limit, walLimit)
	}
}
