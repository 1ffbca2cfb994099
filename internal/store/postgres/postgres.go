// Package postgres is Talon's state store for several schedulers and many
// nodes: PostgreSQL through a pgx connection pool.
//
// Transactions run at READ COMMITTED. A transition locks its runs' rows
// (SELECT … FOR NO KEY UPDATE, in id order so two batches cannot
// deadlock) and then compares and sets; the fenced limits additionally
// take a transaction-scoped advisory lock per job, so two schedulers
// cannot both see "1 of 2 running" and both start a run. Run creation
// inserts in a fixed order (by unique key) for the same reason, and
// deadlocks or serialization failures that still happen are retried.
//
// Batches cost a fixed number of round trips, not one per item: their
// items travel as arrays and are applied by set-based statements
// (INSERT … SELECT FROM unnest, UPDATE … FROM unnest), and a transition
// batch decides its checks and fences in memory between one pipelined
// read, taken under the locks, and one pipelined write.
//
// A schema may be named in the URL (?search_path=NAME, or
// options=-csearch_path=NAME); Open creates it if missing. Migrations run
// under a session advisory lock, so processes starting together apply
// them once. Heartbeat returns the database's now(), the one clock all
// schedulers share.
//
// Runs returned by CreateRuns, ListRuns and Transition carry their progress
// but not their artifacts; GetRun carries both.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/talonhq/talon/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

func init() {
	o := func(ctx context.Context, url string) (store.Store, error) { return Open(ctx, url) }
	store.Register("postgres", o)
	store.Register("postgresql", o)
}

// DB is a state store in a PostgreSQL database (or one schema of it).
type DB struct {
	pool   *pgxpool.Pool
	listen *listener  // the notifier (see Subscribe)
	tell   *announcer // tells the other processes of committed events
	// agentTrees caches the schedule's tree with the live agents' nodes;
	// agentPrune is when ExpireAgentRuns last forgot old rows (µs).
	agentTrees store.AgentTrees
	agentPrune atomic.Int64
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url, creates the schema named by its
// search_path if missing, and applies any missing migrations. Errors
// reaching the database wrap store.ErrUnavailable.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("open postgres store: cannot parse the URL (want postgres://user@host/db?search_path=SCHEMA)")
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "talon"
	}
	// Talon's statements find runs by id or through an index, at any
	// table size. pgx prepares each statement once per connection, and
	// PostgreSQL soon keeps a generic plan for it: made while the tables
	// were small, that plan scans runs sequentially, and keeps doing so as
	// runs grows, until an ANALYZE happens to invalidate it — each step
	// then cost more with every run. Sequential scans are discouraged
	// (where no index serves a query it is still scanned), so a cached
	// plan stays right as tables grow. With 20,000 runs of one period,
	// created → finished p50 went from 16 ms to 5.4 ms (bench/, row 2);
	// planning every execution instead (plan_cache_mode) got 7.1 ms and
	// made short paths slower.
	if _, ok := cfg.ConnConfig.RuntimeParams["enable_seqscan"]; !ok {
		cfg.ConnConfig.RuntimeParams["enable_seqscan"] = "off"
	}
	schema := schemaOf(cfg.ConnConfig.RuntimeParams)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", classify(err))
	}
	tell := newAnnouncer(cfg.ConnConfig)
	db := &DB{pool: pool, listen: newListener(cfg.ConnConfig, tell), tell: tell}
	if err := db.migrate(ctx, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return db, nil
}

// schemaOf returns the first schema of the search_path given as a run-time
// parameter or in options, or "" when none is.
func schemaOf(params map[string]string) string {
	path := params["search_path"]
	if path == "" {
		opts := params["options"]
		for _, f := range strings.Fields(strings.ReplaceAll(opts, "-c ", "-c")) {
			if v, ok := strings.CutPrefix(f, "-csearch_path="); ok {
				path = v
			}
		}
	}
	first, _, _ := strings.Cut(path, ",")
	first = strings.TrimSpace(first)
	if len(first) >= 2 && first[0] == '"' && first[len(first)-1] == '"' {
		first = strings.ReplaceAll(first[1:len(first)-1], `""`, `"`)
	}
	if first == "$user" {
		return ""
	}
	return first
}

// Ping checks that the database answers. A connection the pool still
// holds from before an outage fails once and is dropped, so one failure
// is retried on a fresh connection before it counts.
func (db *DB) Ping(ctx context.Context) error {
	err := db.pool.Ping(ctx)
	if err != nil && ctx.Err() == nil {
		err = db.pool.Ping(ctx)
	}
	if err != nil {
		err = classify(err)
		if !errors.Is(err, store.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Close releases the store's connections.
func (db *DB) Close() error {
	db.listen.close()
	db.tell.close()
	db.pool.Close()
	return nil
}

// Subscribe returns a channel woken after each committed write that
// added events to this schema: at once for this DB's own writes, and by
// LISTEN/NOTIFY (on a connection of its own, opened by the first
// subscription) for other processes' writes, and after that connection
// is (re)established.
func (db *DB) Subscribe() (<-chan struct{}, func()) { return db.listen.subscribe() }

// eventsCommitted wakes this DB's subscribers and has the other
// processes told (see announcer), after a commit that added events.
func (db *DB) eventsCommitted() {
	db.listen.notify.Wake()
	db.tell.committed()
}

// migrate creates the schema if needed and applies missing migrations,
// holding a session advisory lock so concurrent Opens take turns.
func (db *DB) migrate(ctx context.Context, schema string) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return classify(fmt.Errorf("connect: %w", err))
	}
	defer conn.Release()
	const lockKey = "talon.migrate"
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, lockKey); err != nil {
		return classify(fmt.Errorf("lock migrations: %w", err))
	}
	defer func() {
		// A fresh context: the caller's may be done, and the lock must go.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext($1))`, lockKey); err != nil {
			// Closing the connection releases a session lock too.
			conn.Conn().Close(uctx) //nolint:errcheck
		}
	}()
	if schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return classify(fmt.Errorf("create schema %s: %w", schema, err))
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return classify(fmt.Errorf("create schema_migrations: %w", err))
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return classify(fmt.Errorf("read schema_migrations: %w", err))
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return classify(fmt.Errorf("read schema_migrations: %w", err))
	}
	for _, name := range names {
		v, err := migrationVersion(name)
		if err != nil {
			return err
		}
		if contains(have, v) {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// A migration walks whole tables, which sequential scans do
			// best (the pool discourages them; see Open).
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = on`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return classify(fmt.Errorf("apply migration %s: %w", name, err))
		}
	}
	return nil
}

func contains(vs []int, v int) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func migrationVersion(name string) (int, error) {
	base := name[strings.LastIndex(name, "/")+1:]
	num, _, _ := strings.Cut(base, "_")
	v, err := strconv.Atoi(num)
	if err != nil {
		return 0, fmt.Errorf("migration %s: name must start with a number", name)
	}
	return v, nil
}

// maxAttempts bounds how often a transaction is retried after a deadlock,
// a serialization failure, or a pooled connection found dead on BEGIN.
const maxAttempts = 5

// querier is what a read of one statement needs: the pool itself.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// read runs a read of one statement straight on the pool: one statement
// sees one snapshot without a transaction, and BEGIN and COMMIT would
// double its round trips. Like tx it retries when a pooled connection
// was found dead (the pool then dials a fresh one); a read changes
// nothing, so retrying it is always safe.
func (db *DB) read(ctx context.Context, fn func(querier) error) error {
	var err error
	for range maxAttempts {
		if err = fn(db.pool); err == nil {
			return nil
		}
		err = classify(err)
		if ctx.Err() != nil || !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrDown) {
			return err
		}
	}
	return err
}

// tx runs fn in a transaction, retrying it when nothing can have been
// applied: BEGIN failed (a connection the server closed while it idled
// in the pool — the pool then dials a fresh one), or the server aborted
// the transaction for a deadlock or a serialization failure.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range maxAttempts {
		var tx pgx.Tx
		tx, err = db.pool.Begin(ctx)
		if err != nil {
			err = classify(fmt.Errorf("begin: %w", err))
			if ctx.Err() != nil || !errors.Is(err, store.ErrUnavailable) {
				return err
			}
			continue
		}
		err = fn(tx)
		if err == nil {
			err = tx.Commit(ctx)
			if err != nil {
				err = fmt.Errorf("commit: %w", err)
			}
		} else {
			_ = tx.Rollback(ctx)
		}
		if err == nil {
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return classify(err)
		}
	}
	return classify(err)
}

// retryable reports whether the server aborted a transaction that can
// simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// classify marks errors that mean "the database cannot be reached right
// now" with store.ErrUnavailable: refused or broken connections, the
// server shutting down, too many connections, a closed pool, or no
// answer before the caller's deadline.
func classify(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	if unavailable(err) {
		if down(err) {
			return fmt.Errorf("%w: %w: %w", store.ErrUnavailable, store.ErrDown, err)
		}
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// down reports whether err proves the server is down for every client:
// nothing listens on its port, or the server itself answered that it is
// starting up, shutting down or recovering (57P03). A timeout or a reset
// proves nothing: the network may have failed for this client alone.
func down(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P03"
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin/crash shutdown, cannot connect now
			pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, puddle.ErrClosedPool) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "closed pool")
}

// tstz converts a time to the stored form: UTC, microseconds, NULL if zero.
func tstz(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
