package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon/internal/store"
)

// eventsChannel is the channel the events_notify trigger (migration
// 0005) notifies, with the schema's name as payload: databases shared
// by several schemas (one per test, or per environment) wake only the
// listeners of their own.
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

	mu        sync.Mutex
	connected bool
	started   bool
	cancel    context.CancelFunc
	done      chan struct{}
}

func newListener(cfg *pgx.ConnConfig) *listener {
	return &listener{cfg: cfg}
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
		if n.Payload == schema {
			l.notify.Wake()
		}
	}
}
