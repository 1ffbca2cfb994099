// Package sqlite is Talon's embedded state store: one SQLite file in WAL
// mode, through the pure-Go modernc.org/sqlite driver, so talon stays a
// single CGO-free binary.
//
// Writes go through one connection and begin with BEGIN IMMEDIATE: SQLite
// allows one writer at a time anyway, and taking the write lock up front
// means a transaction never has to upgrade a read lock, which is what makes
// SQLITE_BUSY appear under concurrency. Several processes (or handles) on
// one file queue on the busy timeout instead. Because every write
// transaction holds the file's only write lock, fenced limits checked inside
// it hold across processes too. Reads use a separate pool and see every
// committed write (WAL readers do not block the writer).
//
// Times are stored as INTEGER microseconds since the Unix epoch in UTC.
// Heartbeat reports the host's clock as the database clock: an SQLite file
// is only shared by processes on one host, so they share that clock.
//
// Runs returned by CreateRuns, ListRuns and Transition carry their progress
// but not their artifacts; GetRun carries both.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/talonhq/talon/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

func init() {
	store.Register("sqlite", func(ctx context.Context, u string) (store.Store, error) {
		path := strings.TrimPrefix(u, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		return Open(ctx, path)
	})
}

// busyTimeout is how long a writer waits for another process's write
// transaction before giving up with ErrUnavailable.
const busyTimeout = 10 * time.Second

// DB is a state store in one SQLite file.
type DB struct {
	path string
	w    *sql.DB // exactly one connection: every write, serialized
	r    *sql.DB // read-only pool
	// notify wakes the subscribers of every handle on this file in this
	// process (see Subscribe).
	notify *store.Broadcast
	// stmts caches the write path's statements, prepared once on the
	// writer's one connection (see stmt).
	stmts sync.Map // query → *sql.Stmt
	// agentTrees caches the schedule's tree with the live agents' nodes;
	// agentPrune is when ExpireAgentRuns last forgot old rows (µs).
	agentTrees store.AgentTrees
	agentPrune atomic.Int64
	// ckpt copies the WAL back into the file after commits.
	ckpt *checkpointer
}

// stmt returns query for use in tx: prepared once on the writer's one
// connection when it is one of writeStmts, so a statement the write path
// runs at every step is not compiled again in every transaction; else
// prepared in tx.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts.Load(query); ok {
		return tx.StmtContext(ctx, s.(*sql.Stmt)), nil
	}
	return tx.PrepareContext(ctx, query)
}

// prepareWrites prepares writeStmts on the writer connection. It runs
// before any transaction: the writer has one connection, which a
// transaction holds.
func (db *DB) prepareWrites(ctx context.Context) error {
	for _, q := range writeStmts {
		s, err := db.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		db.stmts.Store(q, s)
	}
	return nil
}

// notifiers holds one Broadcast per database file (by absolute path), so
// that the handles a process opens on one file wake each other. Other
// processes on the file are not told: talon serve locks it, and the CLI
// writes through the server's API.
var notifiers struct {
	sync.Mutex
	byPath map[string]*store.Broadcast
}

func notifierOf(path string) *store.Broadcast {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	notifiers.Lock()
	defer notifiers.Unlock()
	if notifiers.byPath == nil {
		notifiers.byPath = map[string]*store.Broadcast{}
	}
	b := notifiers.byPath[path]
	if b == nil {
		b = &store.Broadcast{}
		notifiers.byPath[path] = b
	}
	return b
}

// Subscribe returns a channel woken at once, and after each committed
// write that added events through any handle on this file in this
// process.
func (db *DB) Subscribe() (<-chan struct{}, func()) {
	ch, stop := db.notify.Subscribe()
	db.notify.WakeOne(ch)
	return ch, stop
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the SQLite database at path and applies
// any missing migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: empty path (want sqlite:PATH)")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		// A memory database would differ between the writer and the
		// readers, and a URI would bypass the parameters below.
		return nil, fmt.Errorf("open sqlite store %q: want a file path", path)
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.Itoa(int(busyTimeout/time.Millisecond)))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "NORMAL") // durable across crashes of the process in WAL mode
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_journal_mode", "WAL")
	wq.Set("_txlock", "immediate")
	// SQLite's default page cache is 2 MB: with a long history, the index
	// pages every step touches would be read again and again. The writer,
	// which touches them all, keeps up to 64 MB (as it uses it).
	wq.Add("_pragma", "cache_size(-65536)")
	// Checkpoints run in the background (see checkpointer); a commit runs
	// one itself only past walLimit pages.
	wq.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walLimit)+")")
	rq := url.Values{}
	for k, v := range q {
		rq[k] = v
	}
	rq.Set("_query_only", "1")

	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	db := &DB{path: path, w: w, notify: notifierOf(path)}
	if err := db.migrateWaiting(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if err := db.prepareWrites(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// Readers open after the writer has switched the file to WAL.
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	db.r = r
	c, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	db.ckpt = newCheckpointer(c)
	return db, nil
}

// Exclusive reports that one scheduler uses the file at a time: talon
// serve locks it, so no peer can declare a live scheduler's runs lost, and
// a scheduler on SQLite never needs to fence itself during a stall.
func (db *DB) Exclusive() bool { return true }

var _ store.Exclusive = (*DB)(nil)

// Ping checks that the database file can be read. It uses the read
// pool, so a long write transaction does not make the store look down.
func (db *DB) Ping(ctx context.Context) error {
	err := db.read(ctx, func(tx *sql.Tx) error {
		var n int
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n)
	})
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Close releases the store's connections.
func (db *DB) Close() error {
	db.stmts.Range(func(_, s any) bool {
		s.(*sql.Stmt).Close()
		return true
	})
	var err error
	if db.ckpt != nil {
		err = db.ckpt.close()
	}
	err = errors.Join(err, db.w.Close())
	if db.r != nil {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// migrateWaiting is migrate, tried again while the file is locked, for
// up to the busy timeout: processes opening a new file at once switch it
// to WAL, and SQLite answers "locked" to one of them at once rather than
// waiting as it does for an ordinary write.
func (db *DB) migrateWaiting(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.migrate(ctx)
		var se *msqlite.Error
		busy := errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
		if !busy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// migrate applies the embedded migrations that the file lacks, in one
// immediate transaction, so two processes opening a new file at once
// apply them once.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			applied INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		have := map[int]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			have[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, name := range names {
			v, err := migrationVersion(name)
			if err != nil {
				return err
			}
			if have[v] {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply migration %s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`,
				v, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("record migration %s: %w", name, err)
			}
		}
		return nil
	})
}

// migrationVersion reads the number that starts a migration's file name.
func migrationVersion(name string) (int, error) {
	base := name[strings.LastIndex(name, "/")+1:]
	num, _, _ := strings.Cut(base, "_")
	v, err := strconv.Atoi(num)
	if err != nil {
		return 0, fmt.Errorf("migration %s: name must start with a number", name)
	}
	return v, nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN).
func (db *DB) write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return classify(err)
	}
	if err := tx.Commit(); err != nil {
		return classify(fmt.Errorf("commit: %w", err))
	}
	if db.ckpt != nil { // nil while Open migrates
		db.ckpt.committed()
	}
	return nil
}

// writeEvents is write for transactions that add events: it wakes the
// subscribers once the transaction has committed.
func (db *DB) writeEvents(ctx context.Context, fn func(*sql.Tx) error) error {
	err := db.write(ctx, fn)
	if err == nil {
		db.notify.Wake()
	}
	return err
}

// read runs fn in a read transaction, so it sees one snapshot.
func (db *DB) read(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return classify(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return classify(fn(tx))
}

// classify marks errors that mean "the database cannot be used right
// now" with store.ErrUnavailable: another process held the write lock
// past the busy timeout, the file cannot be opened, or the disk failed.
func classify(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_PROTOCOL:
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed") {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// micros converts a time to the stored form.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros stores a zero time as NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros converts a stored time back to a UTC time.Time.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}
