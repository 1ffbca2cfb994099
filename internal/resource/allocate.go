package resource

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
)

// HeadMax is how many waiters at the head of the queue reserve units: the
// store reads no more than these.
const HeadMax = 32

// holdersMax is how many candidates a reason describes.
const holdersMax = 5

// Hold is units of one node held by a run. Period is the period key a
// consumable node's units were taken in, "" for other nodes.
type Hold struct {
	RunID  int64  `json:"run"`
	Path   string `json:"path"`
	Units  int    `json:"units"`
	Period string `json:"period,omitempty"`
}

// Waiter is a run that passed its constraints and waits for resources.
type Waiter struct {
	RunID    int64     `json:"run"`
	Priority int       `json:"priority"`
	Requests []Request `json:"requests"`
	Since    time.Time `json:"since"`
	Reason   string    `json:"reason,omitempty"`
}

// Ahead reports whether w is served before a run of the given priority
// and id: higher priority first, then older (lower id) first.
func (w Waiter) Ahead(priority int, id int64) bool {
	if w.Priority != priority {
		return w.Priority > priority
	}
	return w.RunID < id
}

// SortWaiters puts waiters in queue order.
func SortWaiters(ws []Waiter) {
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Ahead(ws[j].Priority, ws[j].RunID) })
}

// Ledger is the allocation state inside one store transaction: the holds
// that count and the head of the queue, kept up to date as the batch
// allocates, releases and queues runs.
type Ledger struct {
	now     time.Time
	byPath  map[string][]Hold
	byRun   map[int64][]Hold
	waiters []Waiter // queue order
	keys    map[talon.PeriodType]string
	live    map[string]int // units of holds without a period, per path
}

// NewLedger starts a ledger from the holds and head waiters read under
// the store's lock. Consumable holds of past periods may be included;
// they do not count.
func NewLedger(holds []Hold, waiters []Waiter, now time.Time) *Ledger {
	l := &Ledger{now: now, byPath: map[string][]Hold{}, byRun: map[int64][]Hold{}, keys: map[talon.PeriodType]string{}, live: map[string]int{}}
	for _, h := range holds {
		l.add(h)
	}
	l.waiters = slices.Clone(waiters)
	SortWaiters(l.waiters)
	return l
}

func (l *Ledger) add(h Hold) {
	if h.Period == "" {
		l.live[h.Path] += h.Units
	}
	l.byPath[h.Path] = append(l.byPath[h.Path], h)
	l.byRun[h.RunID] = append(l.byRun[h.RunID], h)
}

func (l *Ledger) periodKey(n *Node) string {
	if n.Per == "" {
		return ""
	}
	k, ok := l.keys[n.Per]
	if !ok {
		k = n.PeriodKey(l.now)
		l.keys[n.Per] = k
	}
	return k
}

// Counted returns the holds of n that use its capacity now.
func (l *Ledger) Counted(n *Node) []Hold {
	hs := l.byPath[n.Path]
	if n.Per == "" {
		return hs
	}
	key := l.periodKey(n)
	var out []Hold
	for _, h := range hs {
		if h.Period == "" || h.Period == key {
			out = append(out, h)
		}
	}
	return out
}

// Used is the units of n in use now.
func (l *Ledger) Used(n *Node) int {
	if n.Per == "" {
		return l.live[n.Path]
	}
	u := 0
	for _, h := range l.Counted(n) {
		u += h.Units
	}
	return u
}

// Holds returns the holds of a run.
func (l *Ledger) Holds(runID int64) []Hold { return l.byRun[runID] }

// Release drops a run's holds, except units of consumable nodes, which
// return only when their period ends, and takes it out of the queue. It
// returns the holds released.
func (l *Ledger) Release(runID int64) []Hold {
	l.Unwait(runID)
	var released, kept []Hold
	for _, h := range l.byRun[runID] {
		if h.Period != "" {
			kept = append(kept, h)
			continue
		}
		released = append(released, h)
		l.live[h.Path] -= h.Units
		l.byPath[h.Path] = slices.DeleteFunc(l.byPath[h.Path], func(x Hold) bool { return x.RunID == runID && x.Period == "" })
	}
	if kept == nil {
		delete(l.byRun, runID)
	} else {
		l.byRun[runID] = kept
	}
	return released
}

// Unwait takes a run out of the queue; it reports whether it was queued.
func (l *Ledger) Unwait(runID int64) bool {
	n := len(l.waiters)
	l.waiters = slices.DeleteFunc(l.waiters, func(w Waiter) bool { return w.RunID == runID })
	return len(l.waiters) != n
}

// Waiters returns the queue's head, in order.
func (l *Ledger) Waiters() []Waiter { return l.waiters }

// reservation is what the waiters ahead of a run set aside.
type reservation struct {
	units map[string]int
	by    map[string][]int64
}

// reserve computes what the waiters ahead of (priority, runID) set aside
// from what is free now, in queue order, each taking what it can of each
// request (the candidate with the most units left), so a large request
// gathers units as they are freed.
//
// Only the waiters' requests that share a node with one of the run's
// requests are looked at: units reserved elsewhere cannot stop it.
func (l *Ledger) reserve(t *Tree, priority int, runID int64, mine []Request) reservation {
	rv := reservation{units: map[string]int{}, by: map[string][]int64{}}
	for i, w := range l.waiters {
		if i == HeadMax || !w.Ahead(priority, runID) {
			break
		}
		if w.RunID == runID {
			continue
		}
		type pick struct {
			path  string
			units int
		}
		var picks []pick
		possible := true
		for _, r := range w.Requests {
			relevant := false
			for _, m := range mine {
				if t.Overlaps(r, m) {
					relevant = true
					break
				}
			}
			if !relevant {
				continue
			}
			best, bestFree, fits := "", 0, false
			for _, n := range r.Candidates(t) {
				if n.Capacity >= r.Count {
					fits = true
				}
				free := n.Capacity - l.Used(n) - rv.units[n.Path]
				if free > bestFree {
					best, bestFree = n.Path, free
				}
			}
			if !fits {
				// It can never start (capacity lowered by a reload): it
				// must not hold others back.
				possible = false
				break
			}
			if best != "" {
				picks = append(picks, pick{best, min(bestFree, r.Count)})
			}
		}
		if !possible {
			continue
		}
		for _, p := range picks {
			rv.units[p.path] += p.units
			rv.by[p.path] = append(rv.by[p.path], w.RunID)
		}
	}
	return rv
}

// Allocate serves every request of a run from t, or none. On success it
// records and returns the holds and takes the run out of the queue; on
// failure it queues the run (keeping its place if it was queued) and
// returns why, naming who holds what it waits for.
func (l *Ledger) Allocate(t *Tree, runID int64, priority int, reqs []Request) ([]Hold, string) {
	if len(reqs) == 0 {
		l.Unwait(runID)
		return nil, ""
	}
	rv := l.reserve(t, priority, runID, reqs)
	order := make([]int, len(reqs))
	cands := make([][]*Node, len(reqs))
	for i, r := range reqs {
		order[i] = i
		cands[i] = r.Candidates(t)
	}
	exact := func(i int) bool { return len(cands[i]) == 1 && cands[i][0].Path == reqs[i].Path }
	sort.SliceStable(order, func(a, b int) bool {
		ia, ib := order[a], order[b]
		if exact(ia) != exact(ib) {
			return exact(ia)
		}
		return len(cands[ia]) < len(cands[ib])
	})
	taken := map[string]int{}
	var out []Hold
	for _, i := range order {
		r := reqs[i]
		var chosen *Node
		for _, n := range cands[i] {
			if n.Capacity-l.Used(n)-rv.units[n.Path]-taken[n.Path] >= r.Count {
				chosen = n
				break
			}
		}
		if chosen == nil {
			reason := l.why(t, r, cands[i], rv, taken)
			l.queue(Waiter{RunID: runID, Priority: priority, Requests: reqs, Since: l.now, Reason: reason})
			return nil, reason
		}
		taken[chosen.Path] += r.Count
		out = append(out, Hold{RunID: runID, Path: chosen.Path, Units: r.Count, Period: l.periodKey(chosen)})
	}
	// One hold per node, in path order, so two requests served by the
	// same node read as one.
	sort.SliceStable(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	merged := out[:0]
	for _, h := range out {
		if k := len(merged) - 1; k >= 0 && merged[k].Path == h.Path {
			merged[k].Units += h.Units
			continue
		}
		merged = append(merged, h)
	}
	for _, h := range merged {
		l.add(h)
	}
	l.Unwait(runID)
	return merged, ""
}

func (l *Ledger) queue(w Waiter) {
	for i, x := range l.waiters {
		if x.RunID == w.RunID {
			l.waiters[i] = w
			return
		}
	}
	i := sort.Search(len(l.waiters), func(i int) bool { return !l.waiters[i].Ahead(w.Priority, w.RunID) })
	l.waiters = slices.Insert(l.waiters, i, w)
}

// why explains a request that cannot be served now.
func (l *Ledger) why(t *Tree, r Request, cs []*Node, rv reservation, taken map[string]int) string {
	head := "waiting for " + r.String() + ": "
	if len(cs) == 0 {
		if len(t.Candidates(r.Path)) == 0 {
			return head + "no such resource"
		}
		return head + "no resource matches"
	}
	most, free := 0, 0
	for _, n := range cs {
		most = max(most, n.Capacity)
		free = max(free, n.Capacity-l.Used(n)-rv.units[n.Path]-taken[n.Path])
	}
	if most < r.Count {
		return fmt.Sprintf("%sasks for %d but capacity is %d", head, r.Count, most)
	}
	prefix := literalPrefix(r.Path)
	var parts []string
	for _, n := range cs {
		if len(parts) == holdersMax {
			parts = append(parts, "…")
			break
		}
		var who []string
		runs := map[int64]bool{}
		var ids []int64
		for _, h := range l.Counted(n) {
			if !runs[h.RunID] {
				runs[h.RunID] = true
				ids = append(ids, h.RunID)
			}
		}
		if len(ids) > 0 {
			who = append(who, "held by "+runList(ids))
		}
		if by := rv.by[n.Path]; len(by) > 0 {
			who = append(who, "reserved for "+runList(by))
		}
		if taken[n.Path] > 0 {
			who = append(who, "taken by another request of this run")
		}
		if n.Per != "" {
			who = append(who, fmt.Sprintf("%d of %d used in %s", l.Used(n), n.Capacity, l.periodKey(n)))
		}
		if len(who) == 0 {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(n.Path, prefix), "/")
		if name == "" || len(cs) == 1 && n.Path == r.Path {
			parts = append(parts, strings.Join(who, " and "))
		} else {
			parts = append(parts, name+" "+strings.Join(who, " and "))
		}
	}
	s := fmt.Sprintf("%s%d of %d free", head, max(free, 0), r.Count)
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// literalPrefix is the part of a request path before its first glob
// segment (the namespace for hosts/linux/* and hosts/linux/**).
func literalPrefix(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.ContainsAny(s, "*?[") {
			return strings.Join(segs[:i], "/")
		}
	}
	return p
}

func runList(ids []int64) string {
	if len(ids) == 1 {
		return "run " + strconv.FormatInt(ids[0], 10)
	}
	parts := make([]string, 0, len(ids))
	for i, id := range ids {
		if i == holdersMax {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, strconv.FormatInt(id, 10))
	}
	return "runs " + strings.Join(parts, ", ")
}
