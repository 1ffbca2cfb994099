package executor

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// LogStore keeps the output of runs where every scheduler sharing the
// state store can read it, so `talon logs` and `talon logs -f` work from
// any of them, whichever host or executor ran the run. The state stores
// (store/sqlite, store/postgres) implement it: a run's log is a sequence
// of chunks, each stored at its byte offset.
//
// A log only grows at its end and has no gaps; the offsets make writes
// idempotent, so a writer that does not know whether its last write
// reached the store (a connection cut before the answer) simply sends it
// again.
type LogStore interface {
	// AppendLog stores data as the bytes of run runID's log from byte off
	// on. Bytes below the log's current size were stored by an earlier
	// try of the same write and are skipped; only what lies past the end
	// is added. An off past the end is refused with an error: the log
	// has no gaps. An unknown run is an error wrapping the store's
	// ErrNotFound.
	AppendLog(ctx context.Context, runID, off int64, data []byte) error
	// ReadLog returns the bytes of run runID's log from byte off on, at
	// most limit of them: fewer at the end of what is stored so far, none
	// at or past it (and none for a run with no log, or no such run).
	ReadLog(ctx context.Context, runID, off int64, limit int) ([]byte, error)
	// LogSize is how many bytes of run runID's log are stored (0 when
	// none are).
	LogSize(ctx context.Context, runID int64) (int64, error)
}

// Defaults of a LogWriter (see LogOptions).
const (
	// DefaultLogLimit is how much of one run's output the log store
	// keeps: the first 10 MiB. What a run writes past it is dropped from
	// the store, which notes so at that point; the run's log file on the
	// host of the scheduler that ran it keeps everything.
	DefaultLogLimit = 10 << 20
	// DefaultLogFlushEvery is the longest output waits in memory before
	// it is stored: how late a line may reach `talon logs -f` on another
	// scheduler, beside the follower's own poll.
	DefaultLogFlushEvery = 200 * time.Millisecond
	// DefaultLogFlushSize is the size at which output is stored at once,
	// without waiting for DefaultLogFlushEvery.
	DefaultLogFlushSize = 64 << 10
	// maxLogChunk bounds one stored chunk: a writer that fell behind (a
	// slow store) sends what it holds in pieces of at most this size.
	maxLogChunk = 256 << 10
	// logWriteTimeout bounds one AppendLog.
	logWriteTimeout = 10 * time.Second
	// logCloseWait is how long Close waits for the store before it hands
	// what is left to a goroutine that keeps trying: a run's end is not
	// held up for long by a store that is away.
	logCloseWait = 5 * time.Second
	// logGiveUp is how long that goroutine keeps trying.
	logGiveUp = 10 * time.Minute
)

// LogOptions tune a LogWriter; zero values mean the defaults.
type LogOptions struct {
	// Limit is how many bytes of output are stored (DefaultLogLimit).
	Limit int64
	// FlushEvery and FlushSize say when buffered output is stored: after
	// FlushEvery at the latest, at once when FlushSize bytes wait.
	FlushEvery time.Duration
	FlushSize  int
	// Where, when set, says where the whole output is kept (a log file
	// on the scheduler's host), for the note written at the limit.
	Where string
	// Logger receives what could not be stored; nil discards.
	Logger *slog.Logger
}

// LogWriter copies one run's output to a LogStore in batches: a write
// only appends to memory, and a batch is stored when it is
// DefaultLogFlushSize big or DefaultLogFlushEvery old, so a chatty job
// costs a statement per batch rather than per line, and a run that
// writes nothing costs none. Output past the limit is dropped, with a
// note in the log saying so. A batch the store refused (it is away) is
// kept and sent again, with what came after it, on the next try.
//
// Write never fails and never waits for the store, so a slow store
// never slows the run. Close stores what is left before it returns (or,
// when the store is away, keeps trying in the background), so a run
// recorded finished has its whole log stored: a follower that sees the
// end and then reads to the end has it all.
type LogWriter struct {
	st    LogStore
	run   int64
	opt   LogOptions
	log   *slog.Logger
	flush sync.Mutex // one store write at a time, in order

	mu        sync.Mutex
	pending   []byte // accepted, not yet stored; starts at off
	off       int64
	taken     int64 // output accepted so far, from the writer's start, for the limit
	truncated bool  // the limit was reached; the note is in pending
	dropped   int64
	closed    bool
	running   bool        // a goroutine is storing
	timer     *time.Timer // a store that is due
	backoff   time.Duration
	err       error // the last store error, nil after a success
}

// NewLogWriter returns a writer of run runID's log to st, from byte off
// on (0 for a run that starts; a writer taking over a log it did not
// start, after a scheduler restart, starts at its LogSize).
func NewLogWriter(st LogStore, runID, off int64, opt LogOptions) *LogWriter {
	if opt.Limit <= 0 {
		opt.Limit = DefaultLogLimit
	}
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = DefaultLogFlushEvery
	}
	if opt.FlushSize <= 0 {
		opt.FlushSize = DefaultLogFlushSize
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LogWriter{st: st, run: runID, off: off, taken: off, opt: opt, log: log.With("run", runID)}
}

// Write accepts p for the store; it never fails. Output past the limit
// is dropped.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || len(p) == 0 {
		return len(p), nil
	}
	if w.truncated {
		w.dropped += int64(len(p))
		return len(p), nil
	}
	keep := p
	if room := w.opt.Limit - w.taken; int64(len(p)) > room {
		keep = p[:max(room, 0)]
		w.truncated = true
		w.dropped = int64(len(p) - len(keep))
	}
	w.pending = append(w.pending, keep...)
	w.taken += int64(len(keep))
	if w.truncated {
		w.pending = append(w.pending, w.note()...)
	}
	w.schedule()
	return len(p), nil
}

// note is what the log says where the store stops keeping it.
func (w *LogWriter) note() string {
	s := "\n[talon: this run's output passed " + sizeString(w.opt.Limit) + "; the state store keeps no more of it"
	if w.opt.Where != "" {
		s += "; the whole output is in " + w.opt.Where
	}
	return s + "]\n"
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// schedule arranges for pending output to be stored: at once when a
// batch is full, else when the oldest byte is FlushEvery old. w.mu is
// held.
func (w *LogWriter) schedule() {
	if w.running || w.closed || len(w.pending) == 0 {
		return
	}
	if len(w.pending) >= w.opt.FlushSize && w.err == nil {
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
		w.running = true
		go w.loop()
		return
	}
	if w.timer == nil {
		wait := w.opt.FlushEvery
		if w.err != nil {
			wait = w.backoff
		}
		w.timer = time.AfterFunc(wait, w.fire)
	}
}

// fire is the timer's store.
func (w *LogWriter) fire() {
	w.mu.Lock()
	w.timer = nil
	if w.running || w.closed {
		w.mu.Unlock()
		return
	}
	w.running = true
	w.mu.Unlock()
	w.loop()
}

// loop stores batches while full ones wait, then schedules the next.
func (w *LogWriter) loop() {
	for {
		err := w.store(context.Background())
		w.mu.Lock()
		if err != nil {
			w.backoff = min(max(2*w.backoff, w.opt.FlushEvery), 5*time.Second)
		} else {
			w.backoff = 0
		}
		if err == nil && !w.closed && len(w.pending) >= w.opt.FlushSize {
			w.mu.Unlock()
			continue
		}
		w.running = false
		w.schedule()
		w.mu.Unlock()
		return
	}
}

// store writes what is pending now to the store, in chunks, and drops
// what was stored from pending. It returns the first error; what was
// not stored stays pending, to be sent again.
func (w *LogWriter) store(ctx context.Context) error {
	w.flush.Lock()
	defer w.flush.Unlock()
	w.mu.Lock()
	// Writers append past len(data) only (or to a new array), never
	// into it, so data may be read without the lock.
	data := w.pending[:len(w.pending):len(w.pending)]
	off := w.off
	w.mu.Unlock()
	var err error
	sent := 0
	for sent < len(data) {
		n := min(len(data)-sent, maxLogChunk)
		wctx, cancel := context.WithTimeout(ctx, logWriteTimeout)
		err = w.st.AppendLog(wctx, w.run, off+int64(sent), data[sent:sent+n])
		cancel()
		if err != nil {
			break
		}
		sent += n
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = w.pending[sent:]
	if len(w.pending) == 0 {
		w.pending = nil // let a big batch's array go
	}
	w.off += int64(sent)
	if err != nil && w.err == nil {
		w.log.Warn("run output not stored yet; trying again", "err", err)
	}
	w.err = err
	if err != nil {
		return fmt.Errorf("store log of run %d: %w", w.run, err)
	}
	return nil
}

// Flush stores what is pending now, and returns the store's error.
func (w *LogWriter) Flush(ctx context.Context) error {
	return w.store(ctx)
}

// Close stores what is left and stops the writer: later writes are
// dropped. When the store does not take it within a few seconds, a
// goroutine keeps trying for ten minutes, and Close returns the error.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	dropped := w.dropped
	w.mu.Unlock()
	if dropped > 0 {
		w.log.Info("run output past the log store's limit not stored", "limit", w.opt.Limit, "dropped", dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), logCloseWait)
	err := w.store(ctx)
	cancel()
	if err == nil {
		return nil
	}
	go w.retry()
	return err
}

// retry keeps storing what Close could not, until it is stored or
// logGiveUp has passed.
func (w *LogWriter) retry() {
	deadline := time.Now().Add(logGiveUp)
	wait := time.Second
	for time.Now().Before(deadline) {
		time.Sleep(wait)
		if w.store(context.Background()) == nil {
			w.log.Info("run output stored after the run ended")
			return
		}
		wait = min(2*wait, 30*time.Second)
	}
	w.mu.Lock()
	n := len(w.pending)
	w.mu.Unlock()
	w.log.Error("run output lost from the log store: the state store did not take it", "bytes", n)
}

// Err is the last store error, nil when the last store succeeded.
func (w *LogWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
