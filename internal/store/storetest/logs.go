package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/store"
)

// Every store is an executor.LogStore: the engine hands it to executors.
var _ executor.LogStore = store.Store(nil)

// readAll reads a run's whole log in pieces of size step.
func readAll(t *testing.T, s store.Store, runID int64, step int) string {
	t.Helper()
	var out []byte
	for {
		b, err := s.ReadLog(t.Context(), runID, int64(len(out)), step)
		if err != nil {
			t.Fatalf("ReadLog(%d, %d): %v", runID, len(out), err)
		}
		if len(b) > step {
			t.Fatalf("ReadLog(%d, %d, %d) returned %d bytes", runID, len(out), step, len(b))
		}
		if len(b) == 0 {
			return string(out)
		}
		out = append(out, b...)
	}
}

func logSize(t *testing.T, s store.Store, runID int64) int64 {
	t.Helper()
	n, err := s.LogSize(t.Context(), runID)
	if err != nil {
		t.Fatalf("LogSize(%d): %v", runID, err)
	}
	return n
}

func appendLog(t *testing.T, s store.Store, runID, off int64, data string) {
	t.Helper()
	if err := s.AppendLog(t.Context(), runID, off, []byte(data)); err != nil {
		t.Fatalf("AppendLog(%d, %d, %q): %v", runID, off, data, err)
	}
}

// A log grows at its end in chunks, reads any range of it, skips what
// a resent write stored before, refuses gaps and unknown runs, keeps
// bytes as they are, and is the same through another handle (another
// scheduler).
func testLogs(t *testing.T, open OpenFunc) {
	s, peer := open(t), open(t)
	ctx := t.Context()
	r := runIn(t, s, "etl", "daily/2026-11-26", talon.StateRunning)
	other := runIn(t, s, "etl", "daily/2026-11-27", talon.StateRunning)

	if n := logSize(t, s, r.ID); n != 0 {
		t.Fatalf("LogSize of a run without output = %d, want 0", n)
	}
	if b, err := s.ReadLog(ctx, r.ID, 0, 100); err != nil || len(b) != 0 {
		t.Fatalf("ReadLog of a run without output = %q, %v; want nothing", b, err)
	}
	if b, err := s.ReadLog(ctx, 999999, 0, 100); err != nil || len(b) != 0 {
		t.Fatalf("ReadLog of an unknown run = %q, %v; want nothing", b, err)
	}

	appendLog(t, s, r.ID, 0, "hello ")
	appendLog(t, s, r.ID, 6, "world\n")
	appendLog(t, s, other.ID, 0, "other run\n")
	tests := []struct {
		name      string
		off       int64
		limit     int
		want      string
		wantEmpty bool
	}{
		{name: "all", off: 0, limit: 100, want: "hello world\n"},
		{name: "across chunks", off: 3, limit: 5, want: "lo wo"},
		{name: "inside a chunk", off: 7, limit: 3, want: "orl"},
		{name: "at a chunk's start", off: 6, limit: 100, want: "world\n"},
		{name: "at the end", off: 12, limit: 100, wantEmpty: true},
		{name: "past the end", off: 50, limit: 100, wantEmpty: true},
		{name: "no room", off: 0, limit: 0, wantEmpty: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, h := range []store.Store{s, peer} {
				b, err := h.ReadLog(ctx, r.ID, tt.off, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != tt.want || tt.wantEmpty && len(b) != 0 {
					t.Fatalf("ReadLog(off %d, limit %d) = %q, want %q", tt.off, tt.limit, b, tt.want)
				}
			}
		})
	}
	if n := logSize(t, peer, r.ID); n != 12 {
		t.Fatalf("LogSize = %d, want 12", n)
	}

	// A write sent again (its answer was lost) adds nothing; one that
	// overlaps the end adds only what lies past it.
	appendLog(t, peer, r.ID, 0, "hello ")
	appendLog(t, peer, r.ID, 6, "world\n")
	appendLog(t, peer, r.ID, 6, "world\nagain\n")
	if got := readAll(t, s, r.ID, 4); got != "hello world\nagain\n" {
		t.Fatalf("log after resent writes = %q", got)
	}
	// A gap is refused and changes nothing.
	err := s.AppendLog(ctx, r.ID, 100, []byte("x"))
	if !errors.Is(err, store.ErrLogGap) {
		t.Fatalf("AppendLog past the end: err = %v, want ErrLogGap", err)
	}
	if n := logSize(t, s, r.ID); n != 18 {
		t.Fatalf("LogSize after a refused gap = %d, want 18", n)
	}
	if err := s.AppendLog(ctx, 999999, 0, []byte("x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AppendLog of an unknown run: err = %v, want ErrNotFound", err)
	}
	if err := s.AppendLog(ctx, r.ID, 18, nil); err != nil {
		t.Fatalf("AppendLog of nothing: %v", err)
	}
	if got := readAll(t, peer, other.ID, 100); got != "other run\n" {
		t.Fatalf("the other run's log = %q", got)
	}

	// Any bytes, as they are: not UTF-8, NUL, CR; and big chunks.
	bin := []byte{0, 0xff, 0xfe, '\r', '\n', 0x80, 'a', 0}
	r2 := runIn(t, s, "bin", "daily/2026-11-26", talon.StateRunning)
	if err := s.AppendLog(ctx, r2.ID, 0, bin); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	if err := s.AppendLog(ctx, r2.ID, int64(len(bin)), big); err != nil {
		t.Fatal(err)
	}
	want := string(bin) + string(big)
	if got := readAll(t, peer, r2.ID, 100000); got != want {
		t.Fatalf("binary log read back differs (len %d, want %d)", len(got), len(want))
	}
	if got := readAll(t, peer, r2.ID, 4093); got != want {
		t.Fatalf("binary log read in small pieces differs (len %d, want %d)", len(got), len(want))
	}
}

// countingLogs counts the writes that reach a store's log, and fails the
// first fail of them, as a store that is away would.
type countingLogs struct {
	store.Store
	writes atomic.Int64
	fail   atomic.Int64
	wrote  chan struct{} // receives a value after each write that reached the store
}

func (c *countingLogs) AppendLog(ctx context.Context, runID, off int64, data []byte) error {
	if c.fail.Add(-1) >= 0 {
		return fmt.Errorf("%w: test outage", store.ErrUnavailable)
	}
	err := c.Store.AppendLog(ctx, runID, off, data)
	if err == nil {
		c.writes.Add(1)
		select {
		case c.wrote <- struct{}{}:
		default:
		}
	}
	return err
}

func newCounting(s store.Store) *countingLogs {
	return &countingLogs{Store: s, wrote: make(chan struct{}, 1)}
}

// waitLog waits (bounded) until the run's stored log is want.
func waitLog(t *testing.T, s store.Store, c *countingLogs, runID int64, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := readAll(t, s, runID, 1<<20); got == want {
			return
		}
		select {
		case <-c.wrote:
		case <-deadline:
			t.Fatalf("stored log = %q, want %q", readAll(t, s, runID, 1<<20), want)
		}
	}
}

// The executor's LogWriter over the store: many small writes are one
// statement, a full batch is stored without waiting, an old batch after
// FlushEvery, a batch the store refused is sent again with what followed,
// Close stores the rest, and output past the limit is dropped with a note.
func testLogWriter(t *testing.T, open OpenFunc) {
	s := open(t)
	r := func() talon.Run { return runIn(t, s, "chatty", "daily/2026-11-26", talon.StateRunning) }

	t.Run("batched", func(t *testing.T) {
		c, run := newCounting(s), r()
		w := executor.NewLogWriter(c, run.ID, 0, executor.LogOptions{FlushEvery: time.Hour})
		var want strings.Builder
		for i := range 1000 {
			line := fmt.Sprintf("line %d\n", i)
			want.WriteString(line)
			w.Write([]byte(line))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, s, run.ID, 4096); got != want.String() {
			t.Fatalf("stored log differs: %d bytes, want %d", len(got), want.Len())
		}
		if n := c.writes.Load(); n != 1 {
			t.Fatalf("1000 lines written in one batch took %d store writes, want 1", n)
		}
	})

	t.Run("full batch", func(t *testing.T) {
		c, run := newCounting(s), r()
		w := executor.NewLogWriter(c, run.ID, 0, executor.LogOptions{FlushEvery: time.Hour, FlushSize: 100})
		defer w.Close()
		line := strings.Repeat("x", 99) + "\n"
		w.Write([]byte(line))
		waitLog(t, s, c, run.ID, line)
	})

	t.Run("after FlushEvery", func(t *testing.T) {
		c, run := newCounting(s), r()
		w := executor.NewLogWriter(c, run.ID, 0, executor.LogOptions{FlushEvery: 10 * time.Millisecond})
		defer w.Close()
		w.Write([]byte("one line\n"))
		waitLog(t, s, c, run.ID, "one line\n")
		w.Write([]byte("two\n"))
		waitLog(t, s, c, run.ID, "one line\ntwo\n")
	})

	t.Run("store away", func(t *testing.T) {
		c, run := newCounting(s), r()
		c.fail.Store(2)
		w := executor.NewLogWriter(c, run.ID, 0, executor.LogOptions{FlushEvery: 10 * time.Millisecond})
		defer w.Close()
		w.Write([]byte("before "))
		if err := w.Flush(t.Context()); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Flush with the store away: err = %v", err)
		}
		w.Write([]byte("during "))
		// The writer tries again by itself (once more in vain), then
		// stores both.
		w.Write([]byte("after\n"))
		waitLog(t, s, c, run.ID, "before during after\n")
		if err := w.Flush(t.Context()); err != nil || w.Err() != nil {
			t.Fatalf("Flush after the store came back = %v (Err %v)", err, w.Err())
		}
	})

	t.Run("limit", func(t *testing.T) {
		c, run := newCounting(s), r()
		w := executor.NewLogWriter(c, run.ID, 0, executor.LogOptions{Limit: 10, Where: "/logs/chatty/1.log on h01"})
		w.Write([]byte("12345"))
		w.Write([]byte("67890abc"))
		w.Write([]byte("more"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("after close"))
		want := "1234567890\n[talon: this run's output passed 10 bytes; the state store keeps no more of it; the whole output is in /logs/chatty/1.log on h01]\n"
		if got := readAll(t, s, run.ID, 100); got != want {
			t.Fatalf("log at the limit = %q, want %q", got, want)
		}
	})

	t.Run("continued", func(t *testing.T) {
		// A writer that takes over a log (a scheduler re-attached to a
		// run) continues it at its size.
		c, run := newCounting(s), r()
		appendLog(t, s, run.ID, 0, "first scheduler\n")
		w := executor.NewLogWriter(c, run.ID, logSize(t, s, run.ID), executor.LogOptions{})
		w.Write([]byte("second scheduler\n"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, s, run.ID, 100); got != "first scheduler\nsecond scheduler\n" {
			t.Fatalf("continued log = %q", got)
		}
	})

	t.Run("concurrent writes", func(t *testing.T) {
		c, run := newCounting(s), r()
		w := executor.NewLogWriter(c, run.ID, 0, executor.LogOptions{FlushEvery: time.Millisecond, FlushSize: 64})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					w.Write([]byte(fmt.Sprintf("%d:%03d\n", g, i)))
				}
			})
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, s, run.ID, 1000)
		if n := strings.Count(got, "\n"); n != 800 {
			t.Fatalf("stored %d lines, want 800", n)
		}
	})
}
