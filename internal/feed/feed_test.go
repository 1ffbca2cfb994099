package feed_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/talontest"
)

const wait = 10 * time.Second

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// stores runs fn on a fresh SQLite file and a fresh PostgreSQL schema.
func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(t.Context(), talontest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

func startHub(t *testing.T, src feed.Source, opts feed.Options) *feed.Hub {
	h := feed.New(src, logger(t), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

func next(t *testing.T, s *feed.Sub) talon.Event {
	t.Helper()
	select {
	case e, ok := <-s.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return e
	case <-time.After(wait):
		t.Fatalf("no event within %s", wait)
	}
	panic("unreachable")
}

func newRun(t *testing.T, st store.Store, job string) talon.Run {
	t.Helper()
	out, err := st.CreateRuns(t.Context(), []store.CreateRun{{Job: job, Period: "daily/2026-11-26", Trigger: "api"}})
	if err != nil {
		t.Fatal(err)
	}
	return out[0].Run
}

// TestHub: live events reach every subscriber in id order, filtered; a
// subscriber that does not read is dropped while the others go on; a
// subscriber that resumes from an id gets exactly what came after it.
func TestHub(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		before := newRun(t, st, "old") // history, before the hub starts
		h := startHub(t, st, feed.Options{Buffer: 4})
		ctx := t.Context()
		all, err := h.Subscribe(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer all.Close()
		onlyB, err := h.Subscribe(ctx, func(e talon.Event) bool { return e.Job == "b" })
		if err != nil {
			t.Fatal(err)
		}
		defer onlyB.Close()
		slow, err := h.Subscribe(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if all.Position() < 1 {
			t.Fatalf("position %d: the hub should start at the newest event", all.Position())
		}

		var ids []int64
		for i := range 6 {
			job := "a"
			if i%3 == 0 {
				job = "b"
			}
			r := newRun(t, st, job)
			e := next(t, all)
			if e.RunID != r.ID || e.Type != talon.EventTransition || e.Job != job {
				t.Fatalf("event %+v, want the creation of run %d of %s", e, r.ID, job)
			}
			if len(ids) > 0 && e.ID <= ids[len(ids)-1] {
				t.Fatalf("event %d after %d", e.ID, ids[len(ids)-1])
			}
			ids = append(ids, e.ID)
		}
		for range 2 {
			if e := next(t, onlyB); e.Job != "b" {
				t.Fatalf("filtered subscriber got %+v", e)
			}
		}
		// slow read nothing: its 4 slots filled, then it was dropped.
		for range 4 {
			<-slow.Events()
		}
		if _, ok := <-slow.Events(); ok || !errors.Is(slow.Err(), feed.ErrSlow) {
			t.Fatalf("slow subscriber: open=%v err=%v, want dropped with ErrSlow", ok, slow.Err())
		}
		if n := h.Subscribers(); n != 2 {
			t.Errorf("%d subscribers, want 2", n)
		}

		// Resume after the second event: replay from the store, then live.
		re, err := h.Subscribe(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer re.Close()
		var got []int64
		if err := re.Replay(ctx, ids[1], func(e talon.Event) error {
			got = append(got, e.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		newRun(t, st, "a")
		e := next(t, re)
		if !re.Fresh(e) {
			t.Fatalf("live event %d not fresh", e.ID)
		}
		got = append(got, e.ID)
		want := append(slices.Clone(ids[2:]), next(t, all).ID)
		if !slices.Equal(got, want) {
			t.Errorf("resumed after %d: %v, want %v", ids[1], got, want)
		}
		// Replay from 0 has the history too.
		var first int64
		old, err := h.Subscribe(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		_ = old.Replay(ctx, 0, func(e talon.Event) error {
			if first == 0 {
				first = e.RunID
			}
			return nil
		})
		if first != before.ID {
			t.Errorf("replay from 0 starts with run %d, want %d", first, before.ID)
		}
	})
}

// script is a store feed whose visible events the test chooses, to play
// PostgreSQL's commits out of id order, which a real database does not
// do on demand.
type script struct {
	mu   sync.Mutex
	evs  map[int64]talon.Event
	wake chan struct{}
	read map[int64]chan struct{} // closed when a read returns that id
}

func newScript() *script {
	return &script{evs: map[int64]talon.Event{}, wake: make(chan struct{}, 1), read: map[int64]chan struct{}{}}
}

// readCh returns a channel closed once a read has returned event id.
func (s *script) readCh(id int64) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read[id] == nil {
		s.read[id] = make(chan struct{})
	}
	return s.read[id]
}

func (s *script) commit(ids ...int64) {
	s.mu.Lock()
	for _, id := range ids {
		s.evs[id] = talon.Event{ID: id, RunID: id, Type: talon.EventTransition}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *script) EventsAfter(_ context.Context, after int64, limit int) ([]talon.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []talon.Event
	for _, e := range s.evs {
		if e.ID > after {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b talon.Event) int { return int(a.ID - b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	for _, e := range out {
		ch := s.read[e.ID]
		if ch == nil {
			ch = make(chan struct{})
			s.read[e.ID] = ch
		}
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
	return out, nil
}

func (s *script) LastEventID(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last int64
	for id := range s.evs {
		last = max(last, id)
	}
	return last, nil
}

func (s *script) Subscribe() (<-chan struct{}, func()) {
	s.commit()
	return s.wake, func() {}
}

// TestHubCommitOrder: an event seen before a lower id is held back
// until that id appears; an id that does not appear within HoleGrace is
// passed, and published late, out of order, if it appears afterwards.
func TestHubCommitOrder(t *testing.T) {
	src := newScript()
	src.commit(1, 2)
	clock := talontest.NewClock(time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC))
	h := startHub(t, src, feed.Options{HoleGrace: 2 * time.Second, Now: clock.Now})
	sub, err := h.Subscribe(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Position() != 2 {
		t.Fatalf("position %d, want 2", sub.Position())
	}
	src.commit(4) // 3 is still being written
	src.commit(3)
	src.commit(5)
	for _, want := range []int64{3, 4, 5} {
		if e := next(t, sub); e.ID != want {
			t.Fatalf("event %d, want %d", e.ID, want)
		}
	}
	src.commit(7) // 6 rolled back, or is slow
	src.commit(8)
	select { // the hub has seen 8 waiting for 6 before time passes
	case <-src.readCh(8):
	case <-time.After(wait):
		t.Fatal("the hub did not read event 8")
	}
	clock.Add(3 * time.Second)
	src.commit()
	for _, want := range []int64{7, 8} {
		if e := next(t, sub); e.ID != want {
			t.Fatalf("event %d, want %d", e.ID, want)
		}
	}
	src.commit(6) // it was slow: late, out of order
	if e := next(t, sub); e.ID != 6 || !sub.Fresh(e) {
		t.Fatalf("late event %d (fresh %v), want 6", e.ID, sub.Fresh(e))
	}
	src.commit(9)
	if e := next(t, sub); e.ID != 9 {
		t.Fatalf("event %d, want 9", e.ID)
	}
}
