//go:build chaos

package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// checkResult is one promise checked.
type checkResult struct {
	name       string
	figures    string
	uncertain  int // possible violations the ticks cannot settle
	violations []string
}

func (c *checkResult) pass() bool { return len(c.violations) == 0 }

// checker holds what the checks read: the store, the history file and
// what the harness did.
type checker struct {
	runs   map[int64]*runRow
	ids    []int64 // run ids in order
	hist   *historyData
	faults []*fault
	procOf map[string]*talonProc // by instance id
	procs  []*talonProc          // every scheduler process, to find who started an execution
	jobs   map[string]*jobPlan

	outages             []interval
	tick, lease, slack  time.Duration
	bound               time.Duration // detection bound: lease + lease/3 + slack
	fireFrom, fireTo    time.Time     // the window fires are expected in
	faultsEnd, settleBy time.Time
	checkedAt           time.Time
}

func (c *checker) all() []*checkResult {
	return []*checkResult{
		c.checkOnce(), c.checkRetryOverlap(), c.checkAliveAfterLost(), c.checkOutcomes(),
		c.checkLimits(), c.checkFires(), c.checkSettled(), c.checkLostOnlyIfFaulted(), c.checkDetection(),
		c.checkIdleRoom(),
	}
}

// describe says what an execution is, for evidence.
func (c *checker) describe(x *execution) string {
	end := "no end line"
	if !x.end.IsZero() {
		end = "end " + x.status + " at " + clock(x.end)
	}
	return fmt.Sprintf("pid %d (%s, %s) started %s, last seen %s, %s", x.top, x.job, x.shape, clock(x.start), clock(x.last), end)
}

func (c *checker) runLabel(id int64) string {
	r := c.runs[id]
	if r == nil {
		return fmt.Sprintf("run %d (not in the store)", id)
	}
	return fmt.Sprintf("run %d (%s attempt %d, %s: %q)", id, r.job, r.attempt, r.state, cut(r.reason, 120))
}

// 1. No two executions of one run.
func (c *checker) checkOnce() *checkResult {
	res := &checkResult{name: "no run executed twice"}
	for _, id := range sortedKeys(c.hist.byRun) {
		xs := c.hist.byRun[id]
		if len(xs) < 2 {
			continue
		}
		var ev []string
		for _, x := range xs {
			ev = append(ev, c.describe(x))
		}
		res.violations = append(res.violations, fmt.Sprintf("%s started %d times: %s", c.runLabel(id), len(xs), strings.Join(ev, "; ")))
	}
	notInStore := 0
	for id := range c.hist.byRun {
		if c.runs[id] == nil {
			notInStore++
		}
	}
	if notInStore > 0 {
		res.violations = append(res.violations, fmt.Sprintf("%d executions name runs the store does not have", notInStore))
	}
	res.figures = fmt.Sprintf("%d executions of %d runs", len(c.hist.execs), len(c.hist.byRun))
	return res
}

// 2. An original and its retry never overlap: the retry starts after the
// original's last sign of life (every earlier attempt of the chain).
func (c *checker) checkRetryOverlap() *checkResult {
	res := &checkResult{name: "a retry never overlaps its original"}
	pairs := 0
	for _, id := range c.ids {
		r := c.runs[id]
		if r.retryOf == 0 {
			continue
		}
		for _, x := range c.hist.byRun[id] {
			for anc := r.retryOf; anc != 0; {
				for _, y := range c.hist.byRun[anc] {
					pairs++
					certain, possible := y.aliveUntil(c.tick)
					switch {
					case x.start.Before(certain):
						res.violations = append(res.violations, fmt.Sprintf("%s started %s while its original %s was alive until %s (%s after): %s",
							c.runLabel(id), clock(x.start), c.runLabel(anc), clock(certain), certain.Sub(x.start).Round(time.Millisecond), c.describe(y)))
					case x.start.Before(possible):
						res.uncertain++
					}
				}
				if a := c.runs[anc]; a != nil {
					anc = a.retryOf
				} else {
					anc = 0
				}
			}
		}
	}
	res.figures = fmt.Sprintf("%d retry/original execution pairs", pairs)
	return res
}

// 3. Nothing of a run is alive after the run was declared lost.
func (c *checker) checkAliveAfterLost() *checkResult {
	res := &checkResult{name: "nothing of a run lives after it is declared lost"}
	lost := 0
	var late []time.Duration
	for _, id := range c.ids {
		r := c.runs[id]
		e := r.lost()
		if e == nil {
			continue
		}
		lost++
		for _, x := range c.hist.byRun[id] {
			certain, possible := x.aliveUntil(c.tick)
			switch {
			case certain.After(e.at):
				late = append(late, certain.Sub(e.at))
				res.violations = append(res.violations, fmt.Sprintf("%s declared lost at %s, but the run's processes wrote until %s (+%s): %s",
					c.runLabel(id), clock(e.at), clock(certain), certain.Sub(e.at).Round(time.Millisecond), c.describe(x)))
			case possible.After(e.at):
				res.uncertain++
			}
		}
	}
	res.figures = fmt.Sprintf("%d runs declared lost", lost)
	if len(late) > 0 {
		res.figures += fmt.Sprintf("; alive after the declaration: p50 %s, max %s", pct(late, 50), pct(late, 100))
	}
	return res
}

// 4. The recorded outcome is the real one: an execution that exited 0 is
// not recorded failed (and one that failed is not recorded succeeded),
// and the recorded finish is when it ended. This holds also when the
// run's scheduler was killed or frozen before it could record the end:
// the run's supervisor keeps the outcome for whoever recovers the run on
// this host (README, "Local processes die with their scheduler"). Only
// the finish time of such a run is not judged, and an exit 0 within half
// a second of the run's timeout, which the timeout may win, is uncertain.
func (c *checker) checkOutcomes() *checkResult {
	res := &checkResult{name: "outcomes are recorded as they happened"}
	checked, unwatched := 0, 0
	var skew []time.Duration
	for _, x := range c.hist.execs {
		if !x.endedCleanly() {
			continue
		}
		r := c.runs[x.run]
		if r == nil || len(c.hist.byRun[x.run]) > 1 {
			continue // check 1's business
		}
		checked++
		recorded := r.ended()
		if recorded.IsZero() {
			continue // check 7's business
		}
		faulted := c.ownerFaultedBetween(r, x.end, recorded)
		if faulted {
			unwatched++
		}
		switch {
		case x.status == "0" && r.state == "failed":
			if strings.HasPrefix(r.reason, "timeout") && absDur(recorded.Sub(x.end)) < 500*time.Millisecond {
				res.uncertain++
				continue
			}
			how := ""
			if faulted {
				how = ", killed or frozen before it recorded the end"
			}
			res.violations = append(res.violations, fmt.Sprintf("%s: its process exited 0 at %s; recorded failed at %s: %q (owner %s%s)",
				c.runLabel(x.run), clock(x.end), clock(recorded), cut(r.reason, 120), c.ownerName(r), how))
		case x.status != "0" && r.state == "succeeded":
			res.violations = append(res.violations, fmt.Sprintf("%s: its process exited %s at %s; recorded succeeded", c.runLabel(x.run), x.status, clock(x.end)))
		}
		// The recorded finish of a run that ended by itself, unless its
		// scheduler was frozen or killed when it ended (it could not know).
		if (r.state == "succeeded" || strings.HasPrefix(r.reason, "exit status")) && !r.finished.IsZero() && !faulted {
			d := r.finished.Sub(x.end)
			skew = append(skew, absDur(d))
			if absDur(d) > 2*time.Second {
				res.violations = append(res.violations, fmt.Sprintf("%s: its process ended at %s; recorded finished %s (%s off)",
					c.runLabel(x.run), clock(x.end), clock(r.finished), d.Round(time.Millisecond)))
			}
		}
	}
	res.figures = fmt.Sprintf("%d executions that ended by themselves, %d of them while their scheduler was killed or frozen", checked, unwatched)
	if len(skew) > 0 {
		res.figures += fmt.Sprintf("; recorded finish vs real end: p50 %s, max %s", pct(skew, 50), pct(skew, 100))
	}
	return res
}

// starter is the scheduler process that started the run's execution:
// the one among the execution's ancestors (Talon's owner column moves
// when another scheduler re-attaches the run), else the run's owner.
func (c *checker) starter(r *runRow) *talonProc {
	for _, x := range c.hist.byRun[r.id] {
		for _, pid := range x.above {
			for _, p := range c.procs {
				if p.pid == pid && !p.started.After(x.start) {
					return p
				}
			}
		}
	}
	return c.procOf[r.owner]
}

// ownerFaultedBetween reports whether the scheduler that started the run
// was killed or frozen at some point between end and declared (so it did
// not see the end as it happened).
func (c *checker) ownerFaultedBetween(r *runRow, end, declared time.Time) bool {
	p := c.starter(r)
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.killed.IsZero() && !p.killed.Before(end) && !p.killed.After(declared) {
		return true
	}
	for _, s := range p.stops {
		to := s.to
		if to.IsZero() {
			to = declared
		}
		if !s.from.After(declared) && !to.Before(end) {
			return true
		}
	}
	return false
}

func (c *checker) ownerName(r *runRow) string {
	if p := c.procOf[r.owner]; p != nil {
		return p.String()
	}
	if r.owner == "" {
		return "none"
	}
	return "instance " + r.owner
}

// span is an execution's life, for the limit checks.
type span struct {
	run      int64
	units    int
	from, to time.Time
}

// overLimit sweeps spans and returns the instants where the units in use
// exceed limit, with the spans then alive (one entry per distinct set).
func overLimit(spans []span, limit int) [][]span {
	type edge struct {
		at    time.Time
		start bool
		i     int
	}
	var edges []edge
	for i, s := range spans {
		edges = append(edges, edge{s.from, true, i}, edge{s.to, false, i})
	}
	sort.Slice(edges, func(a, b int) bool {
		if !edges[a].at.Equal(edges[b].at) {
			return edges[a].at.Before(edges[b].at)
		}
		if edges[a].i == edges[b].i {
			// A span of no length (a process killed as it started):
			// its start before its end, or it would never end.
			return edges[a].start && !edges[b].start
		}
		return !edges[a].start && edges[b].start // ends first: touching is not overlapping
	})
	active := map[int]bool{}
	used := 0
	var out [][]span
	seen := map[string]bool{}
	for _, e := range edges {
		if !e.start {
			if active[e.i] {
				delete(active, e.i)
				used -= spans[e.i].units
			}
			continue
		}
		active[e.i] = true
		used += spans[e.i].units
		if used <= limit {
			continue
		}
		var set []span
		var key []string
		for i := range active {
			set = append(set, spans[i])
		}
		sort.Slice(set, func(a, b int) bool { return set[a].from.Before(set[b].from) })
		for _, s := range set {
			key = append(key, itoa(s.run))
		}
		k := strings.Join(key, ",")
		if !seen[k] {
			seen[k] = true
			out = append(out, set)
		}
	}
	return out
}

// 5. max_running and the resource's capacity hold at every instant,
// judged from when the executions were really alive.
func (c *checker) checkLimits() *checkResult {
	res := &checkResult{name: "max_running and capacity never exceeded"}
	type limit struct {
		what  string
		limit int
		units func(job string) int
	}
	var limits []limit
	for _, j := range sortedJobs(c.jobs) {
		if j.maxRunning > 0 {
			name := j.name
			limits = append(limits, limit{fmt.Sprintf("max_running %d of %s", j.maxRunning, name), j.maxRunning,
				func(job string) int { return b2i(job == name) }})
		}
	}
	limits = append(limits, limit{fmt.Sprintf("capacity %d of %s", poolCapacity, poolPath), poolCapacity,
		func(job string) int {
			if j := c.jobs[job]; j != nil {
				return j.units
			}
			return 0
		}})
	execs := map[string]int{}
	for _, l := range limits {
		var certain, possible []span
		for _, x := range c.hist.execs {
			job := x.job
			if r := c.runs[x.run]; r != nil {
				job = r.job
			}
			u := l.units(job)
			if u == 0 {
				continue
			}
			to, maybe := x.aliveUntil(c.tick)
			certain = append(certain, span{x.run, u, x.start, to})
			possible = append(possible, span{x.run, u, x.start, maybe})
		}
		over := overLimit(certain, l.limit)
		for _, set := range over {
			var ev []string
			used := 0
			for _, s := range set {
				used += s.units
				ev = append(ev, fmt.Sprintf("%s alive %s–%s", c.runLabel(s.run), clock(s.from), clock(s.to)))
			}
			res.violations = append(res.violations, fmt.Sprintf("%s exceeded (%d in use) at %s: %s", l.what, used, clock(set[len(set)-1].from), strings.Join(ev, "; ")))
		}
		if n := len(overLimit(possible, l.limit)) - len(over); n > 0 {
			res.uncertain += n
		}
		execs[l.what] = len(certain)
	}
	var fs []string
	for _, l := range limits {
		fs = append(fs, fmt.Sprintf("%s (%d executions)", l.what, execs[l.what]))
	}
	res.figures = strings.Join(fs, ", ")
	return res
}

// 6. Every expected fire of a time trigger has exactly one run, or a
// recorded skip, and no fire comes from nowhere.
func (c *checker) checkFires() *checkResult {
	res := &checkResult{name: "every fire has one run or a recorded skip"}
	expected, skipped := 0, 0
	for _, j := range sortedJobs(c.jobs) {
		if j.trigger == nil {
			continue
		}
		byFire := map[int64][]*runRow{}
		for _, id := range c.ids {
			r := c.runs[id]
			if r.job == j.name && r.trigger == j.triggerName && !r.fireTime.IsZero() {
				k := r.fireTime.UnixMicro()
				byFire[k] = append(byFire[k], r)
			}
		}
		var missing []string
		want := map[int64]bool{}
		for _, f := range j.trigger.expectedFires(c.fireFrom, c.fireTo) {
			expected++
			k := f.UnixMicro()
			want[k] = true
			rs := byFire[k]
			switch {
			case len(rs) == 0:
				missing = append(missing, clock(f))
			case len(rs) > 1:
				res.violations = append(res.violations, fmt.Sprintf("%s fire at %s has %d runs: %v", j.name, clock(f), len(rs), runIDs(rs)))
			case rs[0].state == "skipped":
				skipped++
			}
		}
		if len(missing) > 0 {
			res.violations = append(res.violations, fmt.Sprintf("%s (%s): %d fires without a run or a skip: %s",
				j.name, j.trigger.expr, len(missing), strings.Join(firstN(missing, 12), ", ")))
		}
		for k, rs := range byFire {
			at := time.UnixMicro(k)
			if want[k] || at.Before(c.fireFrom) {
				continue
			}
			why := "after the trigger's end " + clock(c.fireTo)
			if !j.trigger.onGrid(at) {
				why = "not an instant of " + j.trigger.expr
			}
			res.violations = append(res.violations, fmt.Sprintf("%s: runs %v for a fire at %s, %s", j.name, runIDs(rs), clock(at), why))
		}
	}
	res.figures = fmt.Sprintf("%d expected fires from %s to %s, %d of them recorded skipped", expected, clock(c.fireFrom), clock(c.fireTo), skipped)
	return res
}

// 7. Every run reaches a terminal state within the bound after the
// faults stop (the last fault restored, the triggers ended).
func (c *checker) checkSettled() *checkResult {
	res := &checkResult{name: "every run ends after the faults stop"}
	var last time.Time
	lastID := int64(0)
	for _, id := range c.ids {
		r := c.runs[id]
		if !r.terminal() {
			res.violations = append(res.violations, fmt.Sprintf("%s still %s at %s, %s after the faults stopped (owner %s)",
				c.runLabel(id), r.state, clock(c.checkedAt), c.checkedAt.Sub(c.faultsEnd).Round(time.Second), c.ownerName(r)))
			continue
		}
		if e := r.ended(); e.After(last) {
			last, lastID = e, id
		}
	}
	bound := c.settleBy.Sub(c.faultsEnd).Round(time.Second)
	if last.After(c.settleBy) {
		res.violations = append(res.violations, fmt.Sprintf("%s ended at %s, %s after the faults stopped (bound %s)",
			c.runLabel(lastID), clock(last), last.Sub(c.faultsEnd).Round(100*time.Millisecond), bound))
	}
	if len(c.ids) == 0 {
		res.violations = append(res.violations, "the store has no runs at all")
	}
	res.figures = fmt.Sprintf("%d runs; the last ended %s after the faults stopped (run %d; bound %s)",
		len(c.ids), last.Sub(c.faultsEnd).Round(100*time.Millisecond), lastID, bound)
	return res
}

// 8. Runs are declared lost only when their scheduler was killed, or
// stopped at the time (or up to the bound before): a database outage is
// nobody's death.
func (c *checker) checkLostOnlyIfFaulted() *checkResult {
	res := &checkResult{name: "no run of a live scheduler declared lost"}
	justified := 0
	for _, id := range c.ids {
		r := c.runs[id]
		e := r.lost()
		if e == nil {
			continue
		}
		p := c.procOf[r.owner]
		if p != nil && p.faulted(e.at, c.bound) {
			justified++
			continue
		}
		ctx := "no database outage before it"
		if o, ok := c.lastOutageBefore(e.at); ok {
			ctx = fmt.Sprintf("the database was down %s–%s, %s before", clock(o.from), clock(o.to), e.at.Sub(o.to).Round(100*time.Millisecond))
		}
		res.violations = append(res.violations, fmt.Sprintf("%s of %s, never killed or stopped, declared lost at %s; %s",
			c.runLabel(id), c.ownerName(r), clock(e.at), ctx))
	}
	res.figures = fmt.Sprintf("%d runs lost with a killed or stopped owner", justified)
	return res
}

// detectionDeadline is when peers must have detected a scheduler whose
// last heartbeat was at base, judged at t: a bound after base, or — as
// peers judge others only once they have heartbeated for a whole lease
// without a gap — a bound after the end of a database outage that began
// before t and ended after base less a lease. why names that outage.
func (c *checker) detectionDeadline(base, t time.Time) (deadline time.Time, why string) {
	deadline = base.Add(c.bound)
	if o, ok := c.lastOutageBefore(t); ok && o.to.After(base.Add(-c.lease)) && o.to.Add(c.bound).After(deadline) {
		deadline = o.to.Add(c.bound)
		why = fmt.Sprintf(", or of the database outage %s–%s", clock(o.from), clock(o.to))
	}
	return deadline, why
}

// lastOutageBefore is the last database outage that began before t.
func (c *checker) lastOutageBefore(t time.Time) (interval, bool) {
	var best interval
	ok := false
	for _, o := range c.outages {
		if !o.from.After(t) && (!ok || o.from.After(best.from)) {
			best, ok = o, true
		}
	}
	return best, ok
}

// 9. A dead or frozen scheduler's runs are taken over (declared lost, or
// re-attached with the outcome they had meanwhile) within the bound of
// its last heartbeat (by the database's clock, read just after
// the signal; the signal's time when it could not be read) or of the end
// of a database outage that came after it, and a frozen one's never
// before its lease ran out.
func (c *checker) checkDetection() *checkResult {
	res := &checkResult{name: "dead schedulers detected in time"}
	var samples, fromSignal []time.Duration
	after := 0 // samples whose deadline an outage moved
	for _, f := range c.faults {
		if !schedulerFault(f.kind) || f.proc == nil || f.at.IsZero() {
			continue
		}
		// Runs the scheduler had running at the signal, less those whose
		// end it was writing at that moment (a commit in flight lands
		// within milliseconds).
		var live []*runRow
		for _, id := range c.ids {
			r := c.runs[id]
			if !r.runningAt(f.at) || (c.starter(r) != f.proc && (f.instance == "" || r.owner != f.instance)) {
				continue
			}
			if e := r.ended(); !e.IsZero() && e.Before(f.at.Add(time.Second)) && r.lost() == nil {
				continue
			}
			live = append(live, r)
		}
		if len(live) == 0 {
			continue
		}
		base := f.at
		if !f.heartbeat.IsZero() && f.heartbeat.Before(f.at) {
			base = f.heartbeat
		}
		var last time.Time
		var undetected []int64
		for _, r := range live {
			e := r.recovered(f.at)
			if e == nil {
				undetected = append(undetected, r.id)
				continue
			}
			if e.at.After(last) {
				last = e.at
			}
			if f.kind == faultStop && !f.heartbeat.IsZero() && e.at.Before(f.heartbeat.Add(c.lease)) {
				res.violations = append(res.violations, fmt.Sprintf("%s: %s taken over at %s (%q), %s before its lease ran out (last heartbeat %s)",
					f, c.runLabel(r.id), clock(e.at), cut(e.reason, 80), f.heartbeat.Add(c.lease).Sub(e.at).Round(time.Millisecond), clock(f.heartbeat)))
			}
		}
		if len(undetected) > 0 {
			// A frozen scheduler may finish its runs itself after
			// SIGCONT, but only if it was not frozen past the deadline
			// its peers had to detect it by.
			deadline, why := c.detectionDeadline(base, f.restored)
			if f.kind != faultStop || f.restored.After(deadline) {
				res.violations = append(res.violations, fmt.Sprintf("%s: runs %v it had running were neither declared lost nor re-attached (%s); bound %s of its last heartbeat at %s%s",
					f, undetected, c.fate(undetected), c.bound, clock(base), why))
			}
			continue
		}
		d := last.Sub(base)
		samples = append(samples, d)
		fromSignal = append(fromSignal, last.Sub(f.at))
		deadline, why := c.detectionDeadline(base, last)
		if why != "" {
			after++
		}
		if last.After(deadline) {
			res.violations = append(res.violations, fmt.Sprintf("%s: %d runs taken over %s after its last heartbeat at %s, the last at %s; bound %s of that heartbeat%s",
				f, len(live), d.Round(time.Millisecond), clock(base), clock(last), c.bound, why))
		}
	}
	if len(samples) == 0 {
		res.figures = "no scheduler fault hit a scheduler with running runs"
		return res
	}
	res.figures = fmt.Sprintf("%d samples, from the last heartbeat: p50 %s, max %s (bound %s = lease %s + lease/3 + slack %s; %d held to a bound after a database outage instead); from the signal: p50 %s, max %s",
		len(samples), pct(samples, 50), pct(samples, 100), c.bound, c.lease, c.slack, after, pct(fromSignal, 50), pct(fromSignal, 100))
	return res
}

// 10. No room is left idle while runs wait for it: a run blocked by
// max_running, or waiting for the resource, starts soon after the store
// shows the job with nothing ready or running, or the resource with no
// unit held — within a heartbeat (lease/3) plus slack, whichever
// scheduler freed the room. Database outages, and the 10 s a step backs
// off to after one, are not held against it.
func (c *checker) checkIdleRoom() *checkResult {
	res := &checkResult{name: "no room left idle while runs wait for it"}
	limit := c.lease/3 + c.slack
	var excluded []interval
	for _, o := range c.outages {
		excluded = append(excluded, interval{o.from, o.to.Add(10 * time.Second)})
	}
	type room struct {
		what   string
		units  func(job string) int
		reason string // the blocked reason of a run waiting for it
	}
	var rooms []room
	for _, j := range sortedJobs(c.jobs) {
		if j.maxRunning > 0 {
			name := j.name
			rooms = append(rooms, room{"max_running of " + name, func(job string) int { return b2i(job == name) }, "max_running:"})
		}
	}
	rooms = append(rooms, room{poolPath, func(job string) int {
		if j := c.jobs[job]; j != nil {
			return j.units
		}
		return 0
	}, "resources:"})
	var waits []time.Duration
	for _, rm := range rooms {
		var holds, waiting []span
		for _, id := range c.ids {
			r := c.runs[id]
			u := rm.units(r.job)
			if u == 0 {
				continue
			}
			for _, iv := range r.spans(func(e eventRow) bool { return e.to == "ready" || e.to == "running" }) {
				holds = append(holds, span{r.id, u, iv.from, iv.to})
			}
			for _, iv := range r.spans(func(e eventRow) bool { return e.to == "blocked" && strings.HasPrefix(e.reason, rm.reason) }) {
				waiting = append(waiting, span{r.id, u, iv.from, iv.to})
			}
		}
		idle := idleTimes(holds, c.checkedAt)
		for _, w := range waiting {
			for _, seg := range subtract(intersect(interval{w.from, w.to}, idle), excluded) {
				d := seg.to.Sub(seg.from)
				if d <= 0 {
					continue
				}
				waits = append(waits, d)
				if d > limit {
					res.violations = append(res.violations, fmt.Sprintf("%s waited for %s from %s to %s (%s) while the store showed it free",
						c.runLabel(w.run), rm.what, clock(seg.from), clock(seg.to), d.Round(100*time.Millisecond)))
				}
			}
		}
	}
	res.figures = fmt.Sprintf("limit %s (lease/3 + slack)", limit)
	if len(waits) > 0 {
		res.figures = fmt.Sprintf("%d waits with room free: p50 %s, max %s (%s)", len(waits), pct(waits, 50), pct(waits, 100), res.figures)
	}
	return res
}

// idleTimes are the intervals, up to end, in which no span is active.
func idleTimes(spans []span, end time.Time) []interval {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.from, 1}, edge{s.to, -1})
	}
	sort.Slice(edges, func(a, b int) bool {
		if !edges[a].at.Equal(edges[b].at) {
			return edges[a].at.Before(edges[b].at)
		}
		return edges[a].delta > edges[b].delta // starts first: no idle instant between touching spans
	})
	var out []interval
	active := 0
	free := time.Time{} // the start of the current idle stretch
	for _, e := range edges {
		if active == 0 && !free.IsZero() && e.delta > 0 && e.at.After(free) {
			out = append(out, interval{free, e.at})
		}
		active += e.delta
		if active == 0 {
			free = e.at
		}
	}
	if active == 0 && !free.IsZero() && end.After(free) {
		out = append(out, interval{free, end})
	}
	return out
}

// intersect returns the parts of iv inside any of ivs.
func intersect(iv interval, ivs []interval) []interval {
	var out []interval
	for _, o := range ivs {
		from, to := maxTime(iv.from, o.from), minTime(iv.to, o.to)
		if to.After(from) {
			out = append(out, interval{from, to})
		}
	}
	return out
}

// subtract removes the excluded intervals from each of ivs.
func subtract(ivs, excluded []interval) []interval {
	for _, x := range excluded {
		var next []interval
		for _, iv := range ivs {
			if !x.to.After(iv.from) || !iv.to.After(x.from) {
				next = append(next, iv)
				continue
			}
			if x.from.After(iv.from) {
				next = append(next, interval{iv.from, x.from})
			}
			if iv.to.After(x.to) {
				next = append(next, interval{x.to, iv.to})
			}
		}
		ivs = next
	}
	return ivs
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// fate says how runs ended, for evidence.
func (c *checker) fate(ids []int64) string {
	var out []string
	for _, id := range ids {
		if r := c.runs[id]; r != nil {
			out = append(out, fmt.Sprintf("%d %s %q", id, r.state, cut(r.reason, 60)))
		}
	}
	return strings.Join(out, "; ")
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(time.Millisecond)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

func runIDs(rs []*runRow) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.id)
	}
	return out
}

func sortedKeys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sortedJobs(m map[string]*jobPlan) []*jobPlan {
	out := make([]*jobPlan, 0, len(m))
	for _, j := range m {
		out = append(out, j)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
