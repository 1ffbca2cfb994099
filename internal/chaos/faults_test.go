//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Fault kinds.
const (
	faultKill      = "sigkill"      // SIGKILL a scheduler, restart it 0.5–2 s later
	faultKillSlow  = "sigkill-slow" // SIGKILL a scheduler, restart it after the detection bound
	faultStop      = "sigstop"      // SIGSTOP a scheduler past the detection bound, then SIGCONT
	faultDBStop    = "db-stop"      // pg_ctl stop -m fast for longer than the lease, then start
	faultDBCrash   = "db-crash"     // pg_ctl stop -m immediate, then start at once
	faultTerminate = "db-terminate" // pg_terminate_backend of Talon's connections
)

var faultKinds = []string{faultKill, faultKillSlow, faultStop, faultDBStop, faultDBCrash, faultTerminate}

func schedulerFault(kind string) bool {
	return kind == faultKill || kind == faultKillSlow || kind == faultStop
}

// fault is one planned fault and, once injected, what happened.
type fault struct {
	kind   string
	offset time.Duration // planned start, from the fault phase's start
	hold   time.Duration // how long before the restore
	target int           // scheduler index, for scheduler faults

	at, restored time.Time
	proc         *talonProc // the process killed or stopped
	instance     string
	heartbeat    time.Time // the killed or stopped instance's last heartbeat (database clock)
	note         string
	err          error // the fault could not be injected or undone
}

func (f *fault) String() string {
	s := fmt.Sprintf("%s at %s", f.kind, clock(f.at))
	if f.proc != nil {
		s += " of " + f.proc.String()
	}
	if f.hold > 0 {
		s += fmt.Sprintf(" for %s", f.restored.Sub(f.at).Round(100*time.Millisecond))
	}
	if f.note != "" {
		s += " (" + f.note + ")"
	}
	if f.err != nil {
		s += " ERROR " + f.err.Error()
	}
	return s
}

// planFaults draws a sequence of faults that fits in d: rounds of the
// kinds in a random order, so every kind comes up about as often, each
// after a gap of 1.5–3 s. Holds make a fault's effect certain: a killed
// or stopped scheduler stays down past the detection bound (or is
// restarted at once, for sigkill), the database longer than the lease.
func planFaults(r *rand.Rand, d, lease, bound time.Duration, schedulers int) []*fault {
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	// A database start takes a moment; keep room for it.
	const overhead = 2 * time.Second
	var out []*fault
	t := time.Duration(0)
	for {
		placed := false
		for _, i := range r.Perm(len(faultKinds)) {
			f := &fault{kind: faultKinds[i], target: r.IntN(schedulers)}
			switch f.kind {
			case faultKill:
				f.hold = between(500*time.Millisecond, 2*time.Second)
			case faultKillSlow, faultStop:
				f.hold = bound + between(time.Second, max(lease/2, 2*time.Second))
			case faultDBStop:
				f.hold = between(lease*6/5, lease*8/5)
			}
			gap := between(1500*time.Millisecond, 3*time.Second)
			end := f.hold
			if !schedulerFault(f.kind) {
				end += overhead
			}
			if t+gap+end > d {
				continue
			}
			f.offset = t + gap
			t = f.offset + end
			out = append(out, f)
			placed = true
		}
		if !placed {
			return out
		}
	}
}

// inject runs one fault now and restores what it broke.
func (h *harness) inject(ctx context.Context, f *fault) {
	sleep := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	switch f.kind {
	case faultKill, faultKillSlow, faultStop:
		if i, n := h.busiest(ctx); n > 0 {
			f.target = i
			f.note = fmt.Sprintf("busiest, %d runs", n)
		}
		s := h.scheds[f.target]
		p := s.current()
		// A process just restarted may still be waiting for the
		// database; a fault on it would test little.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = p.waitServing(wctx)
		cancel()
		f.proc, f.instance = p, p.instanceID()
		// The last heartbeat is read once a statement the process had
		// in flight has had time to land.
		const settle = 200 * time.Millisecond
		lastBeat := func() {
			sleep(settle)
			var err error
			if f.heartbeat, err = h.heartbeatOf(ctx, f.instance); err != nil {
				f.note = strings.TrimPrefix(f.note+"; last heartbeat unknown: "+err.Error(), "; ")
			}
			sleep(f.hold - settle)
		}
		if f.kind == faultStop {
			f.at = p.stop()
			lastBeat()
			f.restored = p.cont()
			return
		}
		f.at = p.kill()
		lastBeat()
		np, err := s.start()
		f.restored, f.err = time.Now(), err
		if np != nil {
			f.note = strings.TrimPrefix(f.note+"; restarted as "+np.String(), "; ")
		}
	case faultDBStop:
		f.at = time.Now()
		if f.err = h.pg.stop(ctx, "fast"); f.err != nil {
			return
		}
		sleep(f.hold)
		f.err = h.pg.start(ctx)
		f.restored = time.Now()
	case faultDBCrash:
		f.at = time.Now()
		if f.err = h.pg.stop(ctx, "immediate"); f.err != nil {
			return
		}
		f.err = h.pg.start(ctx)
		f.restored = time.Now()
	case faultTerminate:
		f.at = time.Now()
		n, err := h.pg.terminateTalon(ctx)
		f.restored, f.err = time.Now(), err
		f.note = fmt.Sprintf("%d backends", n)
	}
}

// busiest returns the scheduler whose current process owns the most
// ready or running runs, and how many: a fault there says the most.
// Ties, and a store that cannot answer, keep the planned target (n = 0).
func (h *harness) busiest(ctx context.Context) (int, int) {
	conn, err := h.pg.connect(ctx, "talon")
	if err != nil {
		return 0, 0
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT owner, count(*) FROM runs WHERE state IN ('ready', 'running') GROUP BY owner`)
	if err != nil {
		return 0, 0
	}
	byOwner := map[string]int{}
	for rows.Next() {
		var owner string
		var n int
		if rows.Scan(&owner, &n) == nil {
			byOwner[owner] = n
		}
	}
	best, most := 0, 0
	for i, s := range h.scheds {
		if n := byOwner[s.current().instanceID()]; n > most {
			best, most = i, n
		}
	}
	return best, most
}

// heartbeatOf reads an instance's last heartbeat, by the database's clock.
func (h *harness) heartbeatOf(ctx context.Context, instance string) (time.Time, error) {
	if instance == "" {
		return time.Time{}, nil
	}
	conn, err := h.pg.connect(ctx, "talon")
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close(ctx)
	var hb time.Time
	err = conn.QueryRow(ctx, `SELECT heartbeat FROM instances WHERE id = $1`, instance).Scan(&hb)
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of %s: %w", instance, err)
	}
	return hb, nil
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05.000")
}
