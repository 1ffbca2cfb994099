package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon/internal/store"
)

// eventsChannel is the channel the announcer notifies after commits
// that wrote events (until migration 0012, a trigger on events did),
// with the schema's name as payload: databases shared by several schemas
// (one per test, or per environment) wake only the listeners of their
// own.
const eventsChannel = "talon_events"

// Reconnection delays of the listening connection after it is lost.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// listener is the notifier of a DB: one dedicated connection (not one of
// the pool's, which are shared and short-lived) that LISTENs on
// eventsChannel and wakes the subscribers. It starts with the first
// subscription and stops when the DB is closed. After each (re)connection
// it wakes every subscriber, since what was notified while it was away
// is lost.
type listener struct {
	cfg    *pgx.ConnConfig
	notify store.Broadcast
	own    *announcer // its notifications are skipped: the DB woke its subscribers itself

	mu        sync.Mutex
	connected bool
	started   bool
	cancel    context.CancelFunc
	done      chan struct{}
}

func newListener(cfg *pgx.ConnConfig, own *announcer) *listener {
	return &listener{cfg: cfg, own: own}
}

// subscribe adds a subscriber, starting the listening connection if it
// is not running. The subscriber is woken once the connection listens
// (at once if it already does).
func (l *listener) subscribe() (<-chan struct{}, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, stop := l.notify.Subscribe()
	if l.connected {
		l.notify.WakeOne(ch)
	}
	if !l.started {
		l.started = true
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go l.run(ctx)
	}
	return ch, stop
}

// close stops the listening connection and waits for it to end.
func (l *listener) close() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	wait := listenRetryMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if l.listen(ctx) {
			wait = listenRetryMin
		} else {
			wait = min(wait*2, listenRetryMax)
		}
		timer.Reset(wait)
	}
}

// listen connects, listens and wakes the subscribers at each notification
// for this schema, until the connection fails or ctx ends. It reports
// whether it got as far as listening.
func (l *listener) listen(ctx context.Context) bool {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx) //nolint:errcheck // the connection is given up either way
	}()
	var schema string
	if err := conn.QueryRow(ctx, `SELECT COALESCE(current_schema(), '')`).Scan(&schema); err != nil {
		return false
	}
	if _, err := conn.Exec(ctx, `LISTEN `+eventsChannel); err != nil {
		return false
	}
	l.mu.Lock()
	l.connected = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.connected = false
		l.mu.Unlock()
	}()
	l.notify.Wake() // anything written before now was not notified to us
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		if n.Payload == schema && (l.own == nil || n.PID != l.own.pid.Load()) {
			l.notify.Wake()
		}
	}
}

// Announcing committed events. A NOTIFY sent inside a writing transaction
// holds PostgreSQL's notification-queue lock from that transaction's
// commit until the commit is durable, so all transactions that write
// events commit one after the other, however many connections send them.
// (Sampling pg_stat_activity with 8 clients triggering at once found
// Talon's backends there a few times, and those of River, which notifies
// in its insert transactions, most of the time.) The store therefore
// notifies after its commits, on a connection of its own, and coalesces:
// the commits made while one NOTIFY is on its way are told by the next,
// at most one every announceGap, which bounds how much later another
// process's event stream wakes. Subscribers of the same DB are woken at
// once, without a round trip, and the listener skips the announcer's own
// notifications.
const announceGap = 5 * time.Millisecond

// announcer sends the NOTIFYs of one DB.
type announcer struct {
	cfg     *pgx.ConnConfig
	pending chan struct{} // holds a token while commits are untold
	pid     atomic.Uint32 // backend of the announcing connection, 0 without one

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

func newAnnouncer(cfg *pgx.ConnConfig) *announcer {
	return &announcer{cfg: cfg, pending: make(chan struct{}, 1), done: make(chan struct{})}
}

// committed notes that events were committed: they are announced soon.
func (a *announcer) committed() {
	a.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		a.cancel = cancel
		go a.run(ctx)
	})
	select {
	case a.pending <- struct{}{}:
	default:
	}
}

// close stops the announcer after one last NOTIFY for what is untold,
// within a second.
func (a *announcer) close() {
	started := false
	a.once.Do(func() { close(a.done) }) // never started: nothing to tell
	select {
	case <-a.done:
	default:
		started = true
	}
	if started {
		a.cancel()
		<-a.done
	}
}

func (a *announcer) run(ctx context.Context) {
	defer close(a.done)
	var conn *pgx.Conn
	defer func() {
		if conn == nil {
			return
		}
		// What was committed last is still told, if it can be at once.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		select {
		case <-a.pending:
			_, _ = conn.Exec(fctx, `SELECT pg_notify($1, COALESCE(current_schema(), ''))`, eventsChannel)
		default:
		}
		conn.Close(fctx) //nolint:errcheck // the connection is given up either way
	}()
	retry := listenRetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.pending:
		}
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := pgx.ConnectConfig(cctx, a.cfg.Copy())
			cancel()
			if err != nil {
				a.retryAfter(ctx, &retry)
				continue
			}
			conn = c
			a.pid.Store(conn.PgConn().PID())
		}
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := conn.Exec(nctx, `SELECT pg_notify($1, COALESCE(current_schema(), ''))`, eventsChannel)
		cancel()
		if err != nil {
			a.pid.Store(0)
			conn.Close(context.Background()) //nolint:errcheck // it is replaced
			conn = nil
			a.retryAfter(ctx, &retry)
			continue
		}
		retry = listenRetryMin
		select {
		case <-ctx.Done():
			return
		case <-time.After(announceGap):
		}
	}
}

// retryAfter keeps the untold commits pending and waits before the next
// attempt, doubling the wait up to listenRetryMax. Meanwhile the
// listeners of other processes fall back on their timers.
func (a *announcer) retryAfter(ctx context.Context, wait *time.Duration) {
	select {
	case a.pending <- struct{}{}:
	default:
	}
	select {
	case <-ctx.Done():
	case <-time.After(*wait):
	}
	*wait = min(*wait*2, listenRetryMax)
}
