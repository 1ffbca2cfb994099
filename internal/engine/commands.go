package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
)

// The scheduler's commands: what the API asks it to do (its Commander).
// Reads are not here: internal/query answers them over the store, asking
// the engine only what it alone knows (Schedule, NextFire, TriggerErrors,
// LogPath), so the loop returns no view and knows no HTTP.

// Trigger creates a run from an external request.
func (e *Engine) Trigger(ctx context.Context, job string, req talon.TriggerRequest) (talon.Run, bool, error) {
	p := e.sched.Load()
	j := p.jobs[job]
	if j == nil {
		return talon.Run{}, false, p.s.JobNotFound(job)
	}
	now := e.now()
	var key string
	if req.Period == "" {
		if j.Period.Type == talon.Oneshot {
			return talon.Run{}, false, talon.Errorf(talon.EINVALID, "job %s has oneshot periods: name one with --period oneshot/NAME", job)
		}
		per, err := periodAt(j, now, talon.PeriodSame)
		if err != nil {
			return talon.Run{}, false, talon.Errorf(talon.EINVALID, "period of job %s at %s: %v", job, now.Format(time.RFC3339), err)
		}
		key = per.Key()
	} else {
		per, err := parseKey(req.Period, j)
		if err != nil {
			return talon.Run{}, false, talon.Errorf(talon.EINVALID, "%v", err)
		}
		if per.Type != j.Period.Type {
			return talon.Run{}, false, talon.Errorf(talon.EINVALID, "period %q is %s but job %s runs for %s periods", req.Period, per.Type, job, j.Period.Type)
		}
		if err := calendar.InHorizon(req.Period, per, now); err != nil {
			return talon.Run{}, false, err
		}
		if per.Environment == "" {
			per.Environment = j.Environment
		}
		if per.Environment != j.Environment {
			return talon.Run{}, false, talon.Errorf(talon.EINVALID, "period %q is in environment %q but job %s runs in %q", req.Period, per.Environment, job, j.Environment)
		}
		key = per.Key()
		if per.Type != talon.Oneshot && j.Calendar != nil {
			// With a business calendar, a weekend or holiday is no period
			// of its own: it belongs to the business day before.
			canon, err := periodAt(j, per.Start, talon.PeriodSame)
			if err != nil {
				return talon.Run{}, false, talon.Errorf(talon.EINVALID, "period %q: %v", req.Period, err)
			}
			if canon.Key() != key {
				return talon.Run{}, false, talon.Errorf(talon.EINVALID, "period %q is not a business day of calendar %s; it belongs to %s", req.Period, j.Period.Calendar, canon.Key())
			}
		}
	}
	audit := req.Audit
	if audit != nil && audit.Time.IsZero() {
		a := *audit
		a.Time = now // as RecordAudit stamps it
		audit = &a
	}
	res, err := e.st.CreateRuns(ctx, []store.CreateRun{{
		Job: job, Period: key, Environment: j.Environment, Trigger: talon.TriggerAPI, Key: req.Key,
		Executor: j.Executor, Params: req.Params, Now: now, Reason: "triggered by request",
		// A paused job takes no new runs: refused loudly, rather than
		// created to wait unseen for the resume. The store decides it in
		// the transaction that would create the run.
		IfPaused: store.PauseRefuse,
		Audit:    audit,
	}})
	if err != nil {
		return talon.Run{}, false, store.UserError(err, "job "+job)
	}
	r := res[0]
	if pause := r.Paused; pause != nil {
		return talon.Run{}, false, talon.Errorf(talon.ECONFLICT, "job %s is %s; resume it first (talon resume %s)", job, pause.Describe(), job)
	}
	if r.Created {
		e.notifyCreated(r.Run)
	}
	return r.Run, r.Created, nil
}

// awaitEnd waits, for as long as a process may take to stop after its
// cancel, for a cancelled run to be recorded finished, and returns it as
// it is then: the caller sees the outcome of the cancel, not the state
// before it.
func (e *Engine) awaitEnd(ctx context.Context, r talon.Run) talon.Run {
	if !e.async.Load() {
		return r // stepped by hand: nobody would record the end meanwhile
	}
	ctx, cancel := context.WithTimeout(ctx, shutdownGrace)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return r
		case <-tick.C:
		}
		cur, err := e.st.GetRun(ctx, r.ID)
		if err != nil {
			return r
		}
		if cur.State.Terminal() {
			return cur
		}
	}
}

// Cancel cancels a run: blocked or ready → skipped; running → killed by
// its executor and failed with reason "cancelled by USER".
func (e *Engine) Cancel(ctx context.Context, id int64, by string) (talon.Run, error) {
	what := fmt.Sprintf("run %d", id)
	if by == "" {
		by = "user"
	}
	r, err := e.st.GetRun(ctx, id)
	if err != nil {
		return r, store.UserError(err, what)
	}
	switch r.State {
	case talon.StateBlocked, talon.StateReady:
		res, err := e.st.Transition(ctx, []store.Transition{{
			RunID: id, From: []talon.State{talon.StateBlocked, talon.StateReady}, To: talon.StateSkipped,
			Reason: "cancelled by " + by, Now: e.now(),
		}})
		if err != nil {
			return r, store.UserError(err, what)
		}
		if res[0].Err != nil {
			return r, store.UserError(res[0].Err, what)
		}
		e.notify(id)
		return res[0].Run, nil
	case talon.StateRunning:
		e.procsMu.Lock()
		pc := e.procs[id]
		if pc != nil {
			pc.cancelled = true
		}
		e.procsMu.Unlock()
		if pc == nil {
			// Another scheduler owns it: leave the request in the store;
			// the owner stops the run at its next heartbeat.
			if err := e.st.RequestCancel(ctx, id, by); err != nil {
				return r, store.UserError(err, what)
			}
			r.Reason = fmt.Sprintf("cancel requested by %s; scheduler %s stops it within %s", by, r.Owner, e.cfg.Lease/3)
			return r, nil
		}
		pc.p.Cancel(errors.New("cancelled by " + by))
		return e.awaitEnd(ctx, r), nil
	}
	return r, talon.Errorf(talon.ECONFLICT, "run %d already %s; nothing to cancel", id, r.State)
}

// Retry creates the next attempt of a failed or skipped run, in the same
// period. A run is retried at most once, automatically or by request (the
// store enforces it with the key "retry-of:ID"), so attempts along a
// chain are unique and retrying an old attempt is refused with the one to
// retry instead. A manual retry is one more attempt: when it fails, the
// job's automatic retries continue only while its attempt is within
// retries.max.
func (e *Engine) Retry(ctx context.Context, id int64, by string) (talon.Run, error) {
	what := fmt.Sprintf("run %d", id)
	r, err := e.st.GetRun(ctx, id)
	if err != nil {
		return r, store.UserError(err, what)
	}
	switch r.State {
	case talon.StateFailed, talon.StateSkipped:
	case talon.StateSucceeded:
		return r, talon.Errorf(talon.ECONFLICT, "run %d succeeded; only failed or skipped runs are retried (for another run of the period: talon trigger %s --period %s)", id, r.Job, r.Period)
	default:
		return r, talon.Errorf(talon.ECONFLICT, "run %d is %s; only failed or skipped runs can be retried", id, r.State)
	}
	if by == "" {
		by = "user"
	}
	res, err := e.st.CreateRuns(ctx, []store.CreateRun{{
		Job: r.Job, Period: r.Period, Environment: r.Environment, Trigger: talon.TriggerRetry,
		Key: store.RetryKey(r.ID), Executor: r.Executor, Attempt: r.Attempt + 1, RetryOf: r.ID,
		Params: r.Params, Now: e.now(), Reason: fmt.Sprintf("retry of run %d requested by %s", r.ID, by),
	}})
	if err != nil {
		return r, store.UserError(err, what)
	}
	if !res[0].Created {
		prev := res[0].Run
		return prev, talon.Errorf(talon.ECONFLICT, "run %d was already retried by run %d (attempt %d, %s); retry the latest attempt instead", id, prev.ID, prev.Attempt, prev.State)
	}
	e.notify(res[0].Run.ID)
	return res[0].Run, nil
}

// Reload re-reads the schedule. An invalid schedule keeps the old one in
// force and the error says why.
func (e *Engine) Reload(ctx context.Context) (string, error) {
	if e.cfg.Load == nil {
		return "", talon.Errorf(talon.EINVALID, "this scheduler was started without a schedule path to reload")
	}
	s, err := e.cfg.Load()
	if err != nil {
		return "", talon.Errorf(talon.EINVALID, "schedule not reloaded, the old one stays in force:\n%s", errorLines(err))
	}
	p, err := compile(s)
	if err != nil {
		return "", talon.Errorf(talon.EINVALID, "schedule not reloaded, the old one stays in force: %v", err)
	}
	e.stepping.Lock()
	e.sched.Store(p)
	clear(e.nextFire)
	e.fireReady = false
	e.trigErrMu.Lock()
	clear(e.trigErr)
	e.trigErrMu.Unlock()
	for id := range e.waiting {
		e.dirty[id] = true
	}
	e.stepping.Unlock()
	e.Kick()
	names := make([]string, 0, len(p.jobs))
	for n := range p.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	e.log.Info("schedule reloaded", "jobs", len(names))
	return fmt.Sprintf("reloaded: %d jobs", len(names)), nil
}

// errorLines is every error of a schedule.ErrorList, one per line: its
// Error() names only the first, and whoever reloads should see them all,
// as talon validate shows them.
func errorLines(err error) string {
	var list schedule.ErrorList
	if !errors.As(err, &list) {
		return err.Error()
	}
	lines := make([]string, len(list))
	for i, e := range list {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// SetProgress records a running run's progress.
func (e *Engine) SetProgress(ctx context.Context, id int64, p talon.Progress) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p.Updated = e.now()
	if m := e.masker(id); m != nil {
		// A job that reports its own secret must not publish it.
		p.Message = m.Replace(p.Message)
		for i := range p.Items {
			p.Items[i].Name, p.Items[i].State = m.Replace(p.Items[i].Name), m.Replace(p.Items[i].State)
		}
	}
	return e.reportErr(ctx, e.st.SetProgress(ctx, id, p), id, "progress")
}

// reportErr words a refused progress or artifact report: a finished run
// takes none, and the user should hear which state it ended in.
func (e *Engine) reportErr(ctx context.Context, err error, id int64, what string) error {
	if errors.Is(err, store.ErrConflict) {
		if r, gerr := e.st.GetRun(ctx, id); gerr == nil {
			return talon.Errorf(talon.ECONFLICT, "run %d is %s: a finished run takes no more %s", id, r.State, what)
		}
	}
	return store.UserError(err, fmt.Sprintf("run %d", id))
}

// healthTimeout bounds the store ping of a health check: whoever asks
// (a load balancer, a script) gets an answer, and a store slower than
// this counts as down.
const healthTimeout = 2 * time.Second

// Health says whether the scheduler works: its store answers a ping now
// (the loop alone would notice an outage only at its next step, up to
// its housekeeping interval later), and its last step succeeded. The
// error names each problem.
func (e *Engine) Health(ctx context.Context) error {
	var problems []string
	pctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	if err := e.st.Ping(pctx); err != nil {
		problems = append(problems, fmt.Sprintf("the state store does not answer (%v)", err))
	}
	if ok, why := e.Healthy(); !ok {
		problems = append(problems, "the scheduler's last step failed: "+why)
	}
	if len(problems) > 0 {
		return talon.Errorf(talon.EUNAVAILABLE, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// masker replaces the secret values of a run this scheduler started with
// executor.Mask; nil when it has none (or another scheduler runs it:
// whatever the job reports through another scheduler is not masked).
func (e *Engine) masker(id int64) *strings.Replacer {
	e.procsMu.Lock()
	pc := e.procs[id]
	e.procsMu.Unlock()
	if pc == nil || len(pc.secrets) == 0 {
		return nil
	}
	var pairs []string
	for _, s := range pc.secrets {
		if s != "" {
			pairs = append(pairs, s, executor.Mask)
		}
	}
	return strings.NewReplacer(pairs...)
}
