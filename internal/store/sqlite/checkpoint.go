package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// SQLite copies the WAL back into the database file in checkpoints. By
// default the commit that takes the WAL past 1,000 pages runs one itself,
// before it returns: copying the pages and syncing the file made those
// commits wait several milliseconds (a dependency hop's p99 was
// 5.7–6.1 ms in BenchmarkChain1000/sqlite, against 1.7–2.0 ms with no
// checkpoint at all). The store checkpoints from a goroutine of
// its own instead, on a connection of its own, after commits; a commit
// checkpoints by itself only past walLimit pages, when the background has
// fallen behind, and then finds little left to copy.
const (
	// walLimit bounds the WAL, in pages (4 KiB each by default): past it
	// a commit checkpoints before it returns, as SQLite does by default
	// past 1,000. Under a steady stream of writes the background's
	// checkpoints may never catch the last commit, and SQLite only starts
	// the WAL from its beginning again after one that did.
	walLimit = 8000
	// checkpointGap is the least time between two background
	// checkpoints: each syncs the database file, and the later one copies
	// the pages both would have.
	checkpointGap = 100 * time.Millisecond
)

// checkpointer runs PASSIVE checkpoints of one database file after
// commits, at most one per checkpointGap. PASSIVE never waits for the
// writer or the readers: it copies what no reader still needs.
type checkpointer struct {
	conn    *sql.DB // one connection, not query_only
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once // starts the goroutine at the first commit
	closing sync.Once
	started bool // set in once
	// after, when set (by tests, before the first commit), is called
	// with the outcome of each checkpoint.
	after func(checkpointResult)
}

// checkpointResult is a checkpoint's outcome: pages in the WAL, and how
// many of them are now copied back.
type checkpointResult struct{ log, copied int64 }

func newCheckpointer(conn *sql.DB) *checkpointer {
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	return &checkpointer{conn: conn, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// committed tells the checkpointer that a write committed; it never
// blocks the writer.
func (c *checkpointer) committed() {
	c.once.Do(func() {
		c.started = true
		go c.run()
	})
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		c.checkpoint()
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointGap):
		}
	}
}

// checkpoint runs one PASSIVE checkpoint. A failure (the disk, another
// process's checkpoint under way) is left for the next one, or for the
// commit that passes walLimit, which reports its own errors.
func (c *checkpointer) checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
	defer cancel()
	var busy int
	var r checkpointResult
	err := c.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &r.log, &r.copied)
	if err == nil && c.after != nil {
		c.after(r)
	}
}

// close stops the goroutine, if it started, and closes the connection.
// The store may be closed more than once.
func (c *checkpointer) close() error {
	c.closing.Do(func() { close(c.stop) })
	c.once.Do(func() {}) // no goroutine starts after this
	if c.started {
		<-c.done
	}
	return c.conn.Close()
}
