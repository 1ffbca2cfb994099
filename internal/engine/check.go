package engine

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/constraint"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
)

// checkDue checks up to MaxBatch blocked runs that are dirty or due, moves
// each to what its constraints decide, and dispatches those that pass. It
// returns how many runs it checked, plus one when the ends it recorded
// made runs due that it did not check.
//
// ends are the runs whose processes ended (see completions), of the jobs
// endJobs. Each is recorded: in the transaction of the batch's decisions
// when none of them could be decided otherwise after it (plan.affects) and
// no decision takes a fenced limit or resources, which the store decides
// at commit and an end may free; else on its own before the runs are
// decided, so that their decisions see it. One commit and one round trip
// instead of two when runs end and others start in one step, which is
// the life of one-at-a-time triggers.
func (e *Engine) checkDue(ctx context.Context, p *plan, now time.Time, ends []store.Transition, endJobs []string) (int, error) {
	// more is 1 when the ends made runs due that this batch did not
	// check, so the caller's loop goes on.
	more := 0
	recordEnds := func() error {
		ts := ends
		ends = nil
		n := len(e.dirty)
		err := e.apply(ctx, p, now, ts)
		if len(e.dirty) > n {
			more = 1
		}
		return err
	}
	ids := make([]int64, 0, min(e.cfg.MaxBatch, len(e.dirty)+8))
	for id := range e.dirty {
		if len(ids) == e.cfg.MaxBatch {
			break
		}
		if e.checking[id] {
			continue // checked again when its answer comes back
		}
		if w := e.waiting[id]; w != nil && w.notBefore.After(now) {
			delete(e.dirty, id) // it stays queued for its time
			continue
		}
		ids = append(ids, id)
	}
	for len(ids) < e.cfg.MaxBatch && len(e.queue) > 0 && !e.queue[0].next.After(now) {
		w := e.queue[0]
		heap.Pop(&e.queue)
		if e.checking[w.id] {
			continue
		}
		ids = append(ids, w.id)
		e.dirty[w.id] = true // so a failed read leaves it due
		w.next = now
		// It is re-queued with its next check once decided.
	}
	e.mu.Lock()
	decided := e.decided
	e.decided = nil
	e.mu.Unlock()
	if len(ids) == 0 && len(decided) == 0 {
		err := recordEnds()
		return more, err
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var runs, fresh []talon.Run
	var unread []int64
	for _, id := range ids {
		if r, ok := e.fresh[id]; ok {
			fresh = append(fresh, r)
		} else {
			unread = append(unread, id)
		}
	}
	if len(unread) > 0 {
		var err error
		runs, err = e.st.ListRuns(ctx, store.RunFilter{IDs: unread})
		if err != nil {
			e.requeueDecided(decided)
			return 0, errors.Join(fmt.Errorf("read blocked runs: %w", err), recordEnds())
		}
	}
	runs = append(runs, fresh...)
	if len(ends) > 0 && endsMatter(p, endJobs, runs, decided) {
		if err := recordEnds(); err != nil {
			e.requeueDecided(decided)
			return 0, err
		}
	}
	for _, id := range ids {
		delete(e.dirty, id)
		delete(e.fresh, id)
	}
	// ListRuns answers newest first; decide oldest first, so that when a
	// fenced limit (max_running, once_per_period) lets only some through,
	// the runs that have been blocked longest go first.
	// Resources are served by priority first, so the batch is ordered the
	// way the store's queue is.
	slices.SortFunc(runs, func(a, b talon.Run) int {
		return cmp.Or(cmp.Compare(priorityOf(p, b.Job), priorityOf(p, a.Job)), cmp.Compare(a.ID, b.ID))
	})

	var toCheck []talon.Run
	for _, r := range runs {
		switch {
		case r.State != talon.StateBlocked:
			e.untrack(r.ID)
		case p.slow[r.Job]:
			e.checkOffLoop(ctx, p, r, now)
		default:
			toCheck = append(toCheck, r)
		}
	}
	var ts []store.Transition
	if len(toCheck) > 0 {
		lk := newLookup(e.st, p)
		// Used once: this check's own moves make them stale.
		for k, c := range e.seeds {
			lk.sums[k] = constraint.Counts(c)
		}
		clear(e.seeds)
		lk.prefetch(ctx, toCheck)
		for _, r := range toCheck {
			ts = append(ts, e.decide(ctx, p, lk, r, now))
		}
	}
	// Answers of slow checks join the batch.
	for _, d := range decided {
		delete(e.checking, d.run.ID)
		toCheck = append(toCheck, d.run)
		ts = append(ts, d.t)
	}
	if len(ts) == 0 {
		err := recordEnds()
		return len(ids) + more, err
	}
	decisions := len(ts)
	ts, prestarted := e.prestart(p, ts, toCheck, now)
	if slices.ContainsFunc(ts, func(t store.Transition) bool { return t.Fence != nil || t.Allocate != nil }) {
		if err := recordEnds(); err != nil {
			for _, t := range ts[:decisions] {
				e.dirty[t.RunID] = true
			}
			return 0, err
		}
	}
	carried := ends
	res, err := e.st.Transition(ctx, append(slices.Clip(carried), ts...))
	if err != nil {
		for _, t := range ts[:decisions] {
			e.dirty[t.RunID] = true
		}
		e.pendingTx = append(e.pendingTx, carried...)
		return 0, fmt.Errorf("record decisions: %w", err)
	}
	var endsErr error // follow-ups not created: kept for the next step
	if len(carried) > 0 {
		n := len(e.dirty)
		endsErr = e.applied(ctx, p, now, carried, res[:len(carried)])
		if len(e.dirty) > n {
			more = 1
		}
		res = res[len(carried):]
	}
	var ready, running []talon.Run
	var refence []store.Transition
	for i, rs := range res[:decisions] {
		t := ts[i]
		var fe *store.FenceError
		switch {
		case errors.As(rs.Err, &fe):
			// A fenced limit held inside the transaction: the run stays
			// blocked and says which limit, like any other constraint.
			ds := append(slices.Clone(t.Decisions), talon.Decision{Constraint: fe.Constraint, Action: talon.ActionBlock, Reason: fe.Reason})
			job := p.jobs[toCheck[i].Job]
			refence = append(refence, store.Transition{
				RunID: t.RunID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked,
				Reason: fe.Constraint + ": " + fe.Reason, Now: now, Decisions: ds, Quiet: true,
				RecheckAt: now.Add(pollOf(job)),
			})
		case rs.Err != nil:
			// Someone else moved it (a cancel, another scheduler).
			e.untrack(t.RunID)
		case rs.Run.State == talon.StateReady:
			e.untrack(rs.Run.ID)
			if k, ok := prestarted[i]; ok && res[k].Err == nil {
				running = append(running, res[k].Run)
			} else {
				ready = append(ready, rs.Run)
			}
		case rs.Run.State == talon.StateBlocked:
			e.track(rs.Run.ID, rs.Run.Job, t.RecheckAt)
			e.fresh[rs.Run.ID] = rs.Run
		default:
			e.untrack(rs.Run.ID)
			e.log.Info("run decided", "run", rs.Run.ID, "job", rs.Run.Job, "period", rs.Run.Period, "state", rs.Run.State, "reason", rs.Run.Reason)
			e.touchJobs(p.dependents(rs.Run.Job)...)
			e.touchJobs(p.freed(rs.Run.Job)...)
		}
	}
	if len(refence) > 0 {
		res, err := e.st.Transition(ctx, refence)
		if err != nil {
			for _, t := range refence {
				e.dirty[t.RunID] = true
			}
			return 0, fmt.Errorf("record fenced runs: %w", err)
		}
		for i, rs := range res {
			if rs.Err == nil {
				e.track(rs.Run.ID, rs.Run.Job, refence[i].RecheckAt)
				e.fresh[rs.Run.ID] = rs.Run
			} else {
				e.untrack(refence[i].RunID)
			}
		}
	}
	if err := e.startRecorded(ctx, p, running, now); err != nil {
		return 0, errors.Join(endsErr, err)
	}
	if err := e.dispatch(ctx, p, ready, now); err != nil {
		return 0, errors.Join(endsErr, err)
	}
	return len(ids) + len(decided) + more, endsErr
}

// endsMatter reports whether the ends of runs of endJobs may change the
// decision on one of the runs about to be decided.
func endsMatter(p *plan, endJobs []string, runs []talon.Run, decided []decision) bool {
	jobs := make(map[string]bool, len(runs)+len(decided))
	for _, r := range runs {
		jobs[r.Job] = true
	}
	for _, d := range decided {
		jobs[d.run.Job] = true
	}
	return slices.ContainsFunc(endJobs, func(j string) bool { return p.affects(j, jobs) })
}

// prestart appends, for each decision letting a run into ready whose
// executor knows its handle before it starts (executor.Prestarter), the
// transition on to running, so one transaction records both, and returns
// them with the index of each such transition by the index of its
// decision. Runs that hold resources are left out (they learn their holds
// between the two), and so is everything while this scheduler's lease is
// not valid.
func (e *Engine) prestart(p *plan, ts []store.Transition, runs []talon.Run, now time.Time) ([]store.Transition, map[int]int) {
	if !e.leaseValid(now) {
		return ts, nil
	}
	var out map[int]int
	for i, n := 0, len(ts); i < n; i++ {
		t := ts[i]
		if t.To != talon.StateReady || t.Allocate != nil {
			continue
		}
		j := p.jobs[runs[i].Job]
		if j == nil || p.isRes[j.Name] {
			continue
		}
		pre, ok := e.cfg.Executors[j.Executor].(executor.Prestarter)
		if !ok || !pre.Quick() {
			continue
		}
		if out == nil {
			out = map[int]int{}
		}
		out[i] = len(ts)
		ts = append(ts, store.Transition{
			RunID: t.RunID, From: []talon.State{talon.StateReady}, To: talon.StateRunning,
			Reason: "started on " + j.Executor, Now: now, Handle: pre.HandleOf(&j.Job), Owner: e.instance.ID,
		})
	}
	return ts, out
}

// decision is the answer of a run's constraints checked off the loop.
type decision struct {
	run talon.Run
	t   store.Transition
}

// checkOffLoop checks a run of a job with a slow constraint (a sensor) in
// a goroutine of its own, a few at a time, so the loop goes on meanwhile;
// the answer joins the next batch of decisions.
func (e *Engine) checkOffLoop(ctx context.Context, p *plan, r talon.Run, now time.Time) {
	e.checking[r.ID] = true
	e.inflight.Add(1)
	go func() {
		held := false
		select {
		case e.sensorSem <- struct{}{}:
			held = true
		case <-ctx.Done():
		}
		t := e.decide(ctx, p, newLookup(e.st, p), r, now)
		if held {
			<-e.sensorSem
		}
		// The answer is recorded as of when it came, not when it was asked.
		t.Now = later(now, e.now())
		e.mu.Lock()
		e.decided = append(e.decided, decision{run: r, t: t})
		e.mu.Unlock()
		e.inflight.Add(-1)
		e.Kick()
	}()
}

// requeueDecided puts answers back when they could not be recorded.
func (e *Engine) requeueDecided(ds []decision) {
	if len(ds) == 0 {
		return
	}
	e.mu.Lock()
	e.decided = append(ds, e.decided...)
	e.mu.Unlock()
}

func priorityOf(p *plan, job string) int {
	if j := p.jobs[job]; j != nil {
		return j.Priority
	}
	return 0
}

func pollOf(j *schedule.Job) time.Duration {
	if j == nil {
		return time.Minute // a job a reload dropped: look again later
	}
	return j.Poll
}

// decide checks every constraint of a blocked run and returns the
// transition that records the combined answer.
func (e *Engine) decide(ctx context.Context, p *plan, lk *lookup, r talon.Run, now time.Time) store.Transition {
	j := p.jobs[r.Job]
	t := store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked}, Now: now}
	if j == nil {
		t.To, t.Quiet = talon.StateBlocked, true
		t.Reason = fmt.Sprintf("job %q is not in the schedule; cancel the run or restore the job", r.Job)
		t.RecheckAt = now.Add(time.Minute)
		t.Decisions = []talon.Decision{{Constraint: "schedule", Action: talon.ActionBlock, Reason: t.Reason}}
		return t
	}
	per, err := lk.period(r.Period, j)
	if err != nil {
		t.To = talon.StateFailed
		t.Reason = fmt.Sprintf("bad period %q: %v", r.Period, err)
		return t
	}
	names := make([]string, len(j.Checks))
	answers := make([]constraint.Answer, len(j.Checks))
	in := constraint.Input{Now: now, Run: r, Job: &j.Job, Period: per, Lookup: lk}
	for i, c := range j.Checks {
		names[i] = c.Name()
		answers[i] = check(ctx, c, in)
	}
	action, reason, recheck, ds := constraint.Decide(names, answers)
	t.Decisions = ds
	t.Reason = reason
	switch action {
	case talon.ActionCancel:
		t.To = talon.StateSkipped
	case talon.ActionFail:
		t.To = talon.StateFailed
	case talon.ActionBlock:
		t.To, t.Quiet = talon.StateBlocked, true
		poll := now.Add(pollOf(j))
		if recheck.IsZero() || recheck.After(poll) || !recheck.After(now) {
			recheck = poll
		}
		t.RecheckAt = recheck
	default:
		t.To = talon.StateReady
		t.Owner = e.instance.ID
		t.Fence = p.fences[j.Name]
		t.Allocate = p.allocation(j, r.Environment)
		t.Executor = j.Executor
	}
	return t
}

// check runs one constraint, turning a panic in a plugged-in kind into a
// block with the panic as reason: a bad constraint must not stop the
// scheduler.
func check(ctx context.Context, c constraint.Constraint, in constraint.Input) (a constraint.Answer) {
	defer func() {
		if v := recover(); v != nil {
			a = constraint.Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("constraint panicked: %v", v)}
		}
	}()
	a = c.Check(ctx, in)
	if !a.Action.Valid() {
		a = constraint.Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("constraint answered unknown action %q", a.Action)}
	}
	return a
}

// lookup answers constraints' questions about other runs from the store,
// prefetching what a batch will likely ask in two queries and caching
// everything for the batch.
type lookup struct {
	st       store.Store
	p        *plan
	sums     map[store.JobPeriod]constraint.Counts
	active   map[string]int
	blocked  map[string][]int64
	periods  map[string]talon.Period
	arts     map[store.JobPeriod][]talon.Artifact
	fetchErr error
}

func newLookup(st store.Store, p *plan) *lookup {
	return &lookup{st: st, p: p, sums: map[store.JobPeriod]constraint.Counts{}, active: map[string]int{}, blocked: map[string][]int64{}, periods: map[string]talon.Period{}, arts: map[store.JobPeriod][]talon.Artifact{}}
}

// Artifacts answers the artifact constraint from the store's index by
// period, once per (job, period) and batch.
func (l *lookup) Artifacts(ctx context.Context, job, period string) ([]talon.Artifact, error) {
	k := store.JobPeriod{Job: job, Period: period}
	if as, ok := l.arts[k]; ok {
		return as, nil
	}
	as, err := l.st.ListArtifacts(ctx, store.ArtifactFilter{Job: job, Period: period})
	if err != nil {
		return nil, err
	}
	l.arts[k] = as
	return as, nil
}

// prefetch loads, in at most two queries, what the built-in constraints
// of the batch's runs will ask: the summaries of a run's own period
// (once_per_period) and of its upstreams' same and previous periods
// (after), and the live counts of jobs with max_running.
func (l *lookup) prefetch(ctx context.Context, runs []talon.Run) {
	var keys []store.JobPeriod
	var jobs []string
	seenJob := map[string]bool{}
	for _, r := range runs {
		j := l.p.jobs[r.Job]
		if j == nil {
			continue
		}
		// Only what the built-in limits will ask: a constraint of
		// another kind still gets its answer, asked when it asks.
		if f := l.p.fences[j.Name]; f != nil {
			if f.OncePerPeriod {
				keys = append(keys, store.JobPeriod{Job: r.Job, Period: r.Period})
			}
			if f.MaxRunning > 0 && !seenJob[r.Job] {
				seenJob[r.Job] = true
				jobs = append(jobs, r.Job)
			}
		}
		per, err := l.period(r.Period, j)
		if err != nil || per.End.IsZero() {
			continue
		}
		at := per.End.Add(-time.Nanosecond) // as the after constraint looks it up
		for _, c := range j.Checks {
			if pd, ok := c.(constraint.PeriodDependent); ok {
				for _, up := range pd.UpstreamPeriods() {
					if k, err := l.PeriodKey(ctx, up.Job, at, up.Offset); err == nil {
						keys = append(keys, store.JobPeriod{Job: up.Job, Period: k})
					}
				}
				continue
			}
			u, ok := c.(upstreamer)
			if !ok {
				continue
			}
			for _, up := range u.Upstreams() {
				for _, off := range []int{0, -1} {
					if k, err := l.PeriodKey(ctx, up, at, off); err == nil {
						keys = append(keys, store.JobPeriod{Job: up, Period: k})
					}
				}
			}
		}
	}
	keys = slices.DeleteFunc(keys, func(k store.JobPeriod) bool { _, known := l.sums[k]; return known })
	if len(keys) > 0 {
		if sums, err := l.st.Summaries(ctx, keys); err == nil {
			for _, k := range keys {
				l.sums[k] = constraint.Counts(sums[k])
			}
		}
	}
	if len(jobs) > 0 {
		if cs, err := l.st.ActiveCounts(ctx, jobs); err == nil {
			for _, j := range jobs {
				l.active[j] = cs[j]
			}
		}
	}
}

func (l *lookup) period(key string, j *schedule.Job) (talon.Period, error) {
	if p, ok := l.periods[key]; ok {
		return p, nil
	}
	p, err := calendar.ParseKey(key, j.Location)
	if err != nil {
		return p, err
	}
	l.periods[key] = p
	return p, nil
}

func (l *lookup) Summary(ctx context.Context, job, period string) (constraint.Counts, error) {
	k := store.JobPeriod{Job: job, Period: period}
	if c, ok := l.sums[k]; ok {
		if c == nil {
			return constraint.Counts{}, nil
		}
		return c, nil
	}
	sums, err := l.st.Summaries(ctx, []store.JobPeriod{k})
	if err != nil {
		return nil, err
	}
	c := constraint.Counts(sums[k])
	if c == nil {
		c = constraint.Counts{}
	}
	l.sums[k] = c
	return c, nil
}

func (l *lookup) Active(ctx context.Context, job string) (int, error) {
	if n, ok := l.active[job]; ok {
		return n, nil
	}
	cs, err := l.st.ActiveCounts(ctx, []string{job})
	if err != nil {
		return 0, err
	}
	l.active[job] = cs[job]
	return cs[job], nil
}

func (l *lookup) BlockedBefore(ctx context.Context, job string, id int64) (int, error) {
	ids, ok := l.blocked[job]
	if !ok {
		runs, err := l.st.ListRuns(ctx, store.RunFilter{Job: job, States: []talon.State{talon.StateBlocked}})
		if err != nil {
			return 0, err
		}
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		l.blocked[job] = ids
	}
	n := 0
	for _, x := range ids {
		if x < id {
			n++
		}
	}
	return n, nil
}

func (l *lookup) PeriodKey(ctx context.Context, job string, at time.Time, offset int) (string, error) {
	j := l.p.jobs[job]
	if j == nil {
		return "", fmt.Errorf("unknown job %q", job)
	}
	per, err := calendar.PeriodAt(at, j.Period.Type, j.Location, j.Calendar, j.Environment)
	if err != nil {
		return "", err
	}
	if offset != 0 {
		if per, err = calendar.Shift(per, offset, j.Calendar); err != nil {
			return "", err
		}
	}
	return per.Key(), nil
}
