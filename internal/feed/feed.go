// Package feed follows the store's event feed for a whole process and
// fans it out: one reader per process (a Hub) reads EventsAfter when the
// store's notifier says new events may exist (and on a slow timer, in
// case a wake-up is lost), and hands each event to every subscriber
// whose filter takes it, through a bounded channel. A subscriber that
// falls behind is dropped — its channel closed, Err saying why — so no
// consumer can block the reader, or the writers behind the store.
//
// Events are published in id order. On SQLite ids are taken in commit
// order; on PostgreSQL they are taken at insert and rows appear at
// commit, so event 104 may be seen while 103 is still being written. The
// hub holds 104 back until 103 appears, or until HoleGrace has passed —
// 103 may never come (a rolled-back transaction burns its id) — and
// then publishes past the hole. It keeps looking for the ids it passed
// for a while (HoleWatch, within the last LookBack ids, like the
// engine's feed of its peers) and publishes one that appears late, out
// of order. So a subscriber's position — the id of the last event it was
// given — is exact: every event with a lower id was given first, except
// such late ones, which is what makes resuming from an id (an event
// stream's Last-Event-ID) lose nothing and repeat nothing.
package feed

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/talonhq/talon"
)

// Source is what a Hub reads: the store's event feed and notifier (a
// store.Store has them).
type Source interface {
	EventsAfter(ctx context.Context, afterID int64, limit int) ([]talon.Event, error)
	LastEventID(ctx context.Context) (int64, error)
	Subscribe() (wake <-chan struct{}, stop func())
}

// Errors a subscription ends with (Sub.Err).
var (
	// ErrSlow: the subscriber did not keep up; it may subscribe again
	// and resume from the id of the last event it was given.
	ErrSlow = errors.New("event subscriber too slow: dropped")
	// ErrClosed: the hub stopped (the server is shutting down).
	ErrClosed = errors.New("event feed closed")
)

// Options tune a Hub; zero fields take the defaults.
type Options struct {
	// Fallback is how often the hub reads without a wake-up (default 5s).
	Fallback time.Duration
	// HoleGrace is how long a missing id holds back the events after it
	// (default 2s).
	HoleGrace time.Duration
	// HoleWatch is how long a passed hole is looked for (default 1m).
	HoleWatch time.Duration
	// LookBack bounds how far below its position the hub looks for holes
	// (default 1000 ids).
	LookBack int64
	// Buffer is the capacity of each subscriber's channel (default 1024).
	Buffer int
	// Gap is the least time from one read to the next (default 2ms): the
	// wake-ups that come meanwhile are answered by one read. Under a
	// steady stream of commits (two a run) a reader woken by each would
	// cost the database a query per commit.
	Gap time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Fallback <= 0 {
		o.Fallback = 5 * time.Second
	}
	if o.HoleGrace <= 0 {
		o.HoleGrace = 2 * time.Second
	}
	if o.HoleWatch <= 0 {
		o.HoleWatch = time.Minute
	}
	if o.LookBack <= 0 {
		o.LookBack = 1000
	}
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.Gap <= 0 {
		o.Gap = 2 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// page is how many events one read asks for.
const page = 1000

// readTimeout bounds one read of the store: a database that hangs (it
// is frozen, or a connection waits on a dead peer) must not keep the
// reader, and one of the store's connections, for longer.
const readTimeout = 10 * time.Second

// Hub is the process's one reader of the event feed.
type Hub struct {
	src  Source
	log  *slog.Logger
	opts Options

	ready chan struct{} // closed once the position is known

	mu     sync.Mutex
	front  int64 // every id up to front was published, or passed as a hole
	subs   map[*Sub]struct{}
	holes  map[int64]time.Time // ids passed and still looked for, until when
	closed bool

	// Used by the reader only.
	pending map[int64]talon.Event // read, waiting for a lower id
	since   map[int64]time.Time   // when each pending event was first read
}

// New returns a Hub reading src. Run starts it.
func New(src Source, logger *slog.Logger, opts Options) *Hub {
	return &Hub{
		src:     src,
		log:     logger,
		opts:    opts.withDefaults(),
		ready:   make(chan struct{}),
		subs:    map[*Sub]struct{}{},
		holes:   map[int64]time.Time{},
		pending: map[int64]talon.Event{},
		since:   map[int64]time.Time{},
	}
}

// Run reads the feed until ctx ends, then closes every subscription
// (ErrClosed). It starts at the newest event: subscribers replay older
// ones from the store (Sub.Replay).
func (h *Hub) Run(ctx context.Context) {
	wake, stop := h.src.Subscribe()
	defer stop()
	defer h.close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	started := false
	var lastRead time.Time // on the monotonic clock, unlike opts.Now
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		if !started {
			sctx, cancel := context.WithTimeout(ctx, readTimeout)
			err := h.start(sctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					h.log.Warn("event feed: read the newest event id", "err", err)
				}
				timer.Reset(time.Second)
				continue
			}
			started = true
		}
		if wait := time.Until(lastRead.Add(h.opts.Gap)); wait > 0 {
			gap := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				gap.Stop()
				return
			case <-gap.C:
			}
			// The wake-ups of the gap are answered by this read.
			select {
			case <-wake:
			default:
			}
		}
		lastRead = time.Now()
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		next, err := h.read(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			h.log.Warn("event feed: read", "err", err)
		}
		wait := h.opts.Fallback
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(h.opts.Now()), time.Millisecond))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// start takes the newest event as the position. Ids missing just below
// it may belong to transactions still being written: they are watched
// like holes.
func (h *Hub) start(ctx context.Context) error {
	last, err := h.src.LastEventID(ctx)
	if err != nil {
		return err
	}
	from := max(0, last-h.opts.LookBack)
	evs, err := h.src.EventsAfter(ctx, from, int(last-from))
	if err != nil {
		return err
	}
	have := map[int64]bool{}
	for _, e := range evs {
		have[e.ID] = true
	}
	until := h.opts.Now().Add(h.opts.HoleWatch)
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := from + 1; id <= last; id++ {
		if !have[id] {
			h.holes[id] = until
		}
	}
	h.front = last
	close(h.ready)
	return nil
}

// read publishes what is new, and returns when the reader must look
// again without a wake-up (zero: at the fallback).
func (h *Hub) read(ctx context.Context) (time.Time, error) {
	now := h.opts.Now()
	h.mu.Lock()
	after := h.front
	h.mu.Unlock()
	for {
		evs, err := h.src.EventsAfter(ctx, after, page)
		if err != nil {
			return now.Add(time.Second), err
		}
		for _, e := range evs {
			if _, ok := h.pending[e.ID]; !ok {
				h.pending[e.ID] = e
				h.since[e.ID] = now
			}
		}
		if len(evs) < page {
			break
		}
		after = evs[len(evs)-1].ID
	}
	late, err := h.lookForHoles(ctx)

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range late {
		// Taken from the holes and published under one lock, so a
		// subscriber either counts it as a hole or gets it live.
		if _, ok := h.holes[e.ID]; ok {
			delete(h.holes, e.ID)
			h.publish(e)
		}
	}
	var next time.Time
	for len(h.pending) > 0 {
		if e, ok := h.pending[h.front+1]; ok {
			h.take(e)
			continue
		}
		// A gap: pass it once the event after it has waited long enough.
		first := slices.Min(keys(h.pending))
		due := h.since[first].Add(h.opts.HoleGrace)
		if now.Before(due) {
			next = due
			break
		}
		until := now.Add(h.opts.HoleWatch)
		for id := h.front + 1; id < first; id++ {
			h.holes[id] = until
		}
		h.front = first - 1
	}
	for id, until := range h.holes {
		if now.After(until) || id <= h.front-h.opts.LookBack {
			delete(h.holes, id)
		}
	}
	return next, err
}

// take publishes the pending event at front+1.
func (h *Hub) take(e talon.Event) {
	delete(h.pending, e.ID)
	delete(h.since, e.ID)
	h.front = e.ID
	h.publish(e)
}

// lookForHoles reads the ids passed as holes, and returns the events
// that have appeared there since (read publishes them).
func (h *Hub) lookForHoles(ctx context.Context) ([]talon.Event, error) {
	h.mu.Lock()
	if len(h.holes) == 0 {
		h.mu.Unlock()
		return nil, nil
	}
	lowest := slices.Min(keys(h.holes))
	front := h.front
	h.mu.Unlock()
	evs, err := h.src.EventsAfter(ctx, lowest-1, int(front-lowest+1))
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var late []talon.Event
	for _, e := range evs {
		if _, ok := h.holes[e.ID]; ok {
			late = append(late, e)
		}
	}
	return late, nil
}

// publish hands e to every subscriber that wants it, dropping those
// whose channel is full. h.mu is held.
func (h *Hub) publish(e talon.Event) {
	for s := range h.subs {
		if s.filter != nil && !s.filter(e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			h.drop(s, ErrSlow)
		}
	}
}

// drop ends a subscription with err. h.mu is held.
func (h *Hub) drop(s *Sub, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.err = err
	close(s.ch)
}

func (h *Hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.drop(s, ErrClosed)
	}
}

// Subscribers is the number of live subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Subscribe starts a subscription to the events filter takes (nil: all),
// from the hub's position now (Sub.Position). It waits until the hub
// knows its position; it returns ErrClosed if the hub has stopped, or
// ctx's error.
func (h *Hub) Subscribe(ctx context.Context, filter func(talon.Event) bool) (*Sub, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	s := &Sub{
		hub:    h,
		filter: filter,
		ch:     make(chan talon.Event, h.opts.Buffer),
		from:   h.front,
		holes:  map[int64]bool{},
	}
	for id := range h.holes {
		s.holes[id] = true
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// Sub is one subscription.
type Sub struct {
	hub    *Hub
	filter func(talon.Event) bool
	ch     chan talon.Event
	from   int64          // the hub's position when it subscribed
	holes  map[int64]bool // the hub's holes then: may come live, late
	err    error          // set when ch is closed, under hub.mu

	replayed map[int64]bool // holes given by Replay
	after    int64          // Replay's starting point
}

// Position is the id up to which the subscription's live events are
// already in the store: Replay gives those, the channel the rest.
func (s *Sub) Position() int64 { return s.from }

// Events is the channel of live events, in the order the hub publishes
// them; it is closed when the subscription ends (Err says why). Pass
// each to Fresh before use.
func (s *Sub) Events() <-chan talon.Event { return s.ch }

// Err says why the channel was closed: ErrSlow, ErrClosed, or nil when
// it was closed by Close.
func (s *Sub) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Sub) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.drop(s, nil)
}

// Replay gives fn the events the filter takes with an id above after,
// up to Position, from the store, oldest first. A subscriber that
// resumes replays first, then reads Events.
func (s *Sub) Replay(ctx context.Context, after int64, fn func(talon.Event) error) error {
	s.after = after
	for after < s.from {
		evs, err := s.hub.src.EventsAfter(ctx, after, page)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		for _, e := range evs {
			if e.ID > s.from {
				return nil
			}
			after = e.ID
			if s.holes[e.ID] {
				if s.replayed == nil {
					s.replayed = map[int64]bool{}
				}
				s.replayed[e.ID] = true
			}
			if s.filter != nil && !s.filter(e) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// Fresh reports whether a live event is new to this subscriber. Events
// above the position are new unless the subscriber resumed from a
// higher id; a late event (at or below the position) is new unless
// Replay already gave it. A late event below the id a subscriber
// resumed from is given too: it was passed as a hole when that id was
// given, so the subscriber cannot have had it, unless from an earlier
// late delivery.
func (s *Sub) Fresh(e talon.Event) bool {
	if e.ID > s.from {
		return e.ID > s.after
	}
	return !s.replayed[e.ID]
}

func keys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
