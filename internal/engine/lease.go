package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/store"
)

// The lease is how a scheduler tells its peers it is alive, and how it
// knows when it must stop its own runs because a peer may declare them
// lost. The rules, which the README's guarantees state:
//
//   - A scheduler heartbeats every Lease/3 from its own goroutine, so a
//     long step (slow sensors, slow starts) never lets its lease lapse.
//   - A peer declares another scheduler's runs lost only when that
//     scheduler's last heartbeat is older than Lease by the database's
//     clock, and the peer itself has heartbeated without a gap for a whole
//     Lease: after a database outage every scheduler gets a full lease to
//     come back before anyone judges it. (On one host, a scheduler whose
//     process is gone is judged at once.)
//   - A scheduler whose heartbeats fail stops its own runs when its last
//     successful heartbeat is Lease - Lease/6 old — before any peer may
//     reap them — unless the failures prove the database is down for
//     every client (store.ErrDown): then no peer can be counting towards a
//     whole lease either, and its runs go on through the outage.
//   - Its processes also fence themselves (executor.Fencer): each is told
//     after every heartbeat how long it may run without the next, so a
//     scheduler frozen by SIGSTOP still cannot overlap a retry.
//   - A store used by one scheduler at a time (store.Exclusive: SQLite)
//     has no peers, so none of this fencing applies to it.

// leaseState is this scheduler's view of its own lease. The heartbeat
// goroutine and the loop share it under mu.
type leaseState struct {
	lastBeat time.Time // when the last successful heartbeat was sent
	// fenceAt is when this scheduler must have renewed its lease, or stop
	// its runs; zero before the first heartbeat.
	fenceAt time.Time
	// connected is since when heartbeats have succeeded without a gap
	// longer than Lease/2; zero while they fail.
	connected time.Time
	// fenced is set once the runs were stopped for a lapsed lease, until
	// the next successful heartbeat.
	fenced bool
}

// fenceMargin is how long before a peer may reap its runs a scheduler
// stops them itself.
func (e *Engine) fenceMargin() time.Duration { return e.cfg.Lease / 6 }

// exclusive reports whether no other scheduler can share the store.
func (e *Engine) exclusive() bool {
	x, ok := e.st.(store.Exclusive)
	return ok && x.Exclusive()
}

// heartbeat renews the lease, sent at now, and returns the database's
// clock. On success the processes this scheduler owns are told their
// new deadline.
func (e *Engine) heartbeat(ctx context.Context, now time.Time) (time.Time, error) {
	in := e.instance
	in.Heartbeat = now
	dbNow, err := e.st.Heartbeat(ctx, in)
	e.leaseMu.Lock()
	l := &e.lease
	if err != nil {
		l.connected = time.Time{}
		extended := time.Time{}
		if errors.Is(err, store.ErrDown) && !l.fenceAt.IsZero() && !l.fenced {
			// Nobody can reach the database: no peer is renewing its
			// own lease, so none can reap ours before a whole lease
			// after the database is back.
			if at := now.Add(e.cfg.Lease - e.fenceMargin()); at.After(l.fenceAt) {
				l.fenceAt = at
				extended = at
			}
		}
		e.leaseMu.Unlock()
		if !extended.IsZero() {
			// The processes fence themselves too: they get the new
			// deadline, or they would stop at the old one.
			e.renew(extended)
		}
		e.fenceIfLapsed(e.now())
		return time.Time{}, fmt.Errorf("heartbeat: %w", err)
	}
	if l.connected.IsZero() || now.Sub(l.lastBeat) > e.cfg.Lease/2 {
		l.connected = now
	}
	l.lastBeat = now
	l.fenceAt = now.Add(e.cfg.Lease - e.fenceMargin())
	l.fenced = false
	fenceAt := l.fenceAt
	e.leaseMu.Unlock()
	e.renew(fenceAt)
	return dbNow, nil
}

// renew tells every process this scheduler owns that can fence itself
// how long it may run without the next heartbeat.
func (e *Engine) renew(fenceAt time.Time) {
	if e.exclusive() {
		return
	}
	d := fenceAt.Sub(e.now())
	// Telling a process may block for a moment (a write to its
	// supervisor); the lock is not held meanwhile.
	for _, p := range e.owned() {
		if f, ok := p.(executor.Fencer); ok {
			f.FenceIn(d)
		}
	}
}

// owned lists the processes this scheduler owns.
func (e *Engine) owned() []executor.Process {
	e.procsMu.Lock()
	defer e.procsMu.Unlock()
	out := make([]executor.Process, 0, len(e.procs))
	for _, pc := range e.procs {
		out = append(out, pc.p)
	}
	return out
}

// fenceIn is the deadline a process started at now gets: the time left
// on the lease, or zero (none) on an exclusive store.
func (e *Engine) fenceIn(now time.Time) time.Duration {
	if e.exclusive() {
		return 0
	}
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	return max(e.lease.fenceAt.Sub(now), time.Millisecond)
}

// leaseValid reports whether this scheduler may start runs at now: its
// lease is current, so no peer can be declaring them lost.
func (e *Engine) leaseValid(now time.Time) bool {
	if e.exclusive() {
		return true
	}
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	return !e.lease.fenceAt.IsZero() && now.Before(e.lease.fenceAt)
}

// connectedFor is how long heartbeats have succeeded without a gap, as
// of now.
func (e *Engine) connectedFor(now time.Time) time.Duration {
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	if e.lease.connected.IsZero() || now.Sub(e.lease.lastBeat) > e.cfg.Lease/2 {
		return 0
	}
	return now.Sub(e.lease.connected)
}

// fenceIfLapsed stops every run this scheduler owns once its lease has
// lapsed, so that a peer that declares them lost can retry them without
// overlap. Their outcomes are recorded failed ("lost: …") when the store
// is back, unless a peer recorded them first; retries apply.
func (e *Engine) fenceIfLapsed(now time.Time) {
	if e.exclusive() {
		return
	}
	e.leaseMu.Lock()
	l := &e.lease
	if l.fenced || l.fenceAt.IsZero() || now.Before(l.fenceAt) {
		e.leaseMu.Unlock()
		return
	}
	l.fenced = true
	since := now.Sub(l.lastBeat).Round(time.Second)
	e.leaseMu.Unlock()
	cause := fmt.Errorf("lost: scheduler %s could not renew its lease for %s, so it stopped the run before a peer could retry it", e.instance.ID, since)
	stopped := 0
	for _, p := range e.owned() {
		// A run that goes on without its scheduler (on an agent) is
		// fenced by its own lease, and the peer that recovers it
		// re-attaches to it: stopping it would only lose it.
		if _, ok := p.(executor.Detacher); ok {
			continue
		}
		p.Cancel(cause)
		stopped++
	}
	if stopped > 0 {
		e.log.Error("lease lapsed: runs stopped", "runs", stopped, "since_heartbeat", since)
	}
}

// keepLease heartbeats from its own goroutine until ctx ends: every
// Lease/3, or every second (at most Lease/5) while the store fails. After each heartbeat it
// acts on cancels asked through other schedulers and looks for dead
// peers, whose runs the loop then reaps.
func (e *Engine) keepLease(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait := e.housekeep(ctx, e.now())
		timer.Reset(wait)
	}
}

// housekeep is one heartbeat round at now; it returns when the next is due.
func (e *Engine) housekeep(ctx context.Context, now time.Time) time.Duration {
	// A scheduler that wakes from a freeze (SIGSTOP, a stalled VM) past
	// its lease stops its runs before it heartbeats again: a peer may
	// already be retrying them.
	e.fenceIfLapsed(now)
	hctx, cancel := context.WithTimeout(ctx, e.cfg.Lease/3)
	defer cancel()
	dbNow, err := e.heartbeat(hctx, now)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("heartbeat", "err", err)
		}
		e.fenceIfLapsed(e.now())
		// Retry often: once the database is back, every scheduler must
		// heartbeat again well within a lease of the first.
		wait := min(time.Second, e.cfg.Lease/5)
		e.leaseMu.Lock()
		if d := e.lease.fenceAt.Sub(e.now()); d > 0 && d < wait {
			wait = d
		}
		e.leaseMu.Unlock()
		return wait
	}
	if err := e.cancelRequested(hctx); err != nil {
		e.log.Warn("read cancel requests", "err", err)
	}
	if err := e.followPeers(hctx); err != nil {
		e.log.Warn("read the event feed", "err", err)
	}
	if e.peerDead(hctx, now, dbNow) {
		e.reapDue.Store(true)
		e.Kick()
	}
	return e.cfg.Lease / 3
}

// peerDead reports whether some other scheduler is dead by the rules
// above.
func (e *Engine) peerDead(ctx context.Context, now, dbNow time.Time) bool {
	insts, err := e.st.Instances(ctx)
	if err != nil {
		return false
	}
	connected := e.connectedFor(now)
	for _, in := range insts {
		// A scheduler reaped owning nothing is not judged again until it
		// heartbeats again: a frozen one may wake, run, and die later.
		if hb, ok := e.buried.Load(in.ID); ok && hb.(time.Time).Equal(in.Heartbeat) {
			continue
		}
		if dead, _ := e.judge(in, dbNow, connected); dead {
			return true
		}
	}
	return false
}

// judge decides whether scheduler instance in is dead, and says why.
// connected is how long this scheduler has itself been connected.
func (e *Engine) judge(in store.Instance, dbNow time.Time, connected time.Duration) (bool, string) {
	switch {
	case in.ID == e.instance.ID:
		return false, ""
	case in.Host == e.instance.Host && !pidAlive(in.PID):
		return true, fmt.Sprintf("scheduler %s (pid %d on %s) is gone", in.ID, in.PID, in.Host)
	case dbNow.Sub(in.Heartbeat) > e.cfg.Lease && connected >= e.cfg.Lease:
		return true, fmt.Sprintf("scheduler %s on %s missed its heartbeat for %s", in.ID, in.Host, dbNow.Sub(in.Heartbeat).Round(time.Second))
	}
	return false, ""
}

// feedWindow is how far below its cursor a scheduler re-reads the event
// feed: on PostgreSQL ids are taken at insert and rows appear at commit,
// so an event may show up after one with a higher id.
const feedWindow = 1000

// followPeers reads the store's events since the last heartbeat, so that
// what other schedulers did reaches this one within a heartbeat rather
// than at its next sync: runs they created are indexed, and runs that
// ended wake the blocked runs that may wait for them (an after, a
// max_running, resources they held). The engine's own events come back
// too; indexing them again is harmless.
func (e *Engine) followPeers(ctx context.Context) error {
	if e.exclusive() {
		return nil // nobody else writes
	}
	if e.feed.seen == nil {
		last, err := e.st.LastEventID(ctx)
		if err != nil {
			return err
		}
		e.feed.cursor, e.feed.seen = last, map[int64]bool{}
		return nil
	}
	evs, err := e.st.EventsAfter(ctx, max(0, e.feed.cursor-feedWindow), 10*feedWindow)
	if err != nil {
		return err
	}
	var ids []int64
	for _, ev := range evs {
		if e.feed.seen[ev.ID] || ev.ID <= e.feed.cursor-feedWindow {
			continue
		}
		e.feed.seen[ev.ID] = true
		e.feed.cursor = max(e.feed.cursor, ev.ID)
		ids = e.take(ids, ev)
	}
	for id := range e.feed.seen {
		if id <= e.feed.cursor-feedWindow {
			delete(e.feed.seen, id)
		}
	}
	if len(ids) > 0 {
		e.notify(ids...)
	}
	return nil
}

// wakes reports whether a peer's event may unblock runs here: a run
// created (to index it) or ended (what waits on it), or an artifact added
// (what waits for artifacts).
func wakes(ev talon.Event) bool {
	return (ev.Type == talon.EventTransition && (ev.From == "" || ev.To.Terminal())) || ev.Type == talon.EventArtifact
}

// take adds what ev tells the loop to ids, the runs to notify: a run
// created or ended is one; an artifact marks that runs waiting for
// artifacts must be checked again, as one added here does.
func (e *Engine) take(ids []int64, ev talon.Event) []int64 {
	switch {
	case !wakes(ev):
		return ids
	case ev.Type == talon.EventArtifact:
		e.mu.Lock()
		e.arrived = true
		e.mu.Unlock()
		e.Kick()
		return ids
	}
	return append(ids, ev.RunID)
}

// followFeed is followPeers woken by the store's notifier, through the
// process's feed: the runs other schedulers create or end are indexed
// (and wake those blocked on them) as soon as their transactions commit.
// Its own events come too, which is harmless, as for followPeers. A
// subscription dropped for being slow subscribes again; what it missed
// the next heartbeat's followPeers reads from the store.
func (e *Engine) followFeed(ctx context.Context) {
	peers := func(ev talon.Event) bool { return wakes(ev) }
	for {
		sub, err := e.cfg.Feed.Subscribe(ctx, peers)
		if err != nil {
			return // ctx ended, or the feed stopped
		}
		err = e.drainFeed(ctx, sub)
		sub.Close()
		if !errors.Is(err, feed.ErrSlow) || ctx.Err() != nil {
			return
		}
		e.log.Warn("event feed: this scheduler fell behind; the next heartbeat catches up")
	}
}

// feedPace is the shortest time between two wake-ups of the loop by the
// feed: every scheduler's events reach every scheduler, and a loop woken
// at each would step without pause while its peers are busy. What comes
// meanwhile waits in the subscription and is taken in one batch.
const feedPace = 250 * time.Millisecond

// drainFeed notifies the loop of the runs sub reports, a batch at most
// every feedPace, until ctx ends (nil) or the subscription does (its
// error).
func (e *Engine) drainFeed(ctx context.Context, sub *feed.Sub) error {
	pace := time.NewTimer(0)
	defer pace.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pace.C:
		}
		var ids []int64
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.Events():
			if !ok {
				return sub.Err()
			}
			ids = e.take(ids, ev)
		}
	more:
		for {
			select {
			case ev, ok := <-sub.Events():
				if !ok {
					break more
				}
				ids = e.take(ids, ev)
			default:
				break more
			}
		}
		e.notify(ids...)
		pace.Reset(feedPace)
	}
}
