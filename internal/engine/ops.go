package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// Pause pauses a job: its time and completion triggers record their fires
// as skipped ("paused by USER") rather than creating runs, external
// triggers are refused, and its blocked runs stay blocked (the store
// refuses to let them enter ready) until Resume; running runs go on. A
// job already paused keeps its pause; created is then false.
func (e *Engine) Pause(ctx context.Context, job, by, reason string) (talon.Pause, bool, error) {
	p := e.sched.Load()
	if p.jobs[job] == nil {
		return talon.Pause{}, false, p.s.JobNotFound(job)
	}
	if by == "" {
		by = "user"
	}
	pause, created, err := e.st.PauseJob(ctx, talon.Pause{Job: job, By: by, Reason: strings.TrimSpace(reason), Since: e.now()})
	if err != nil {
		return pause, false, store.UserError(err, "job "+job)
	}
	if created {
		e.log.Info("job paused", "job", job, "by", by)
	}
	return pause, created, nil
}

// Resume ends a job's pause. Its blocked runs are checked at once; the
// fires that came during the pause stay recorded as skipped (no catch-up:
// use talon trigger or talon backfill for a period that is wanted).
func (e *Engine) Resume(ctx context.Context, job, by string) (talon.Pause, error) {
	pause, err := e.st.ResumeJob(ctx, job)
	switch {
	case errors.Is(err, store.ErrNotFound) && e.sched.Load().jobs[job] != nil:
		return pause, talon.Errorf(talon.ECONFLICT, "job %s is not paused", job)
	case errors.Is(err, store.ErrNotFound):
		return pause, talon.Errorf(talon.ENOTFOUND, "job %q is not paused (nor in the schedule)", job)
	case err != nil:
		return pause, store.UserError(err, "job "+job)
	}
	if by == "" {
		by = "user"
	}
	e.log.Info("job resumed", "job", job, "by", by)
	runs, err := e.st.ListRuns(ctx, store.RunFilter{Job: job, States: []talon.State{talon.StateBlocked}})
	if err != nil {
		// They are checked at their next poll anyway.
		e.log.Warn("read blocked runs of a resumed job", "job", job, "err", err)
		return pause, nil
	}
	ids := make([]int64, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	if len(ids) > 0 {
		e.notify(ids...)
	}
	return pause, nil
}

// pauses returns the paused jobs by name.
func (e *Engine) pauses(ctx context.Context) (map[string]talon.Pause, error) {
	ps, err := e.st.PausedJobs(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]talon.Pause, len(ps))
	for _, p := range ps {
		out[p.Job] = p
	}
	return out, nil
}

// skipPaused has the fires of completion triggers of paused jobs
// recorded as skipped runs, so no fire is lost silently; the store
// decides it in the transaction that creates them (store.PauseSkip).
func skipPaused(cs []store.CreateRun) []store.CreateRun {
	for i := range cs {
		cs[i].IfPaused = store.PauseSkip
	}
	return cs
}

// Mark sets a run's outcome by hand, for when an operator fixed things
// outside Talon: a failed (or skipped, blocked, ready) run marked
// succeeded lets its dependents proceed at once and fires its completion
// triggers; a run marked failed is not retried. A running run is refused:
// its process would record its own end over the mark, so it must be
// cancelled first. A finished run keeps the time it finished.
func (e *Engine) Mark(ctx context.Context, id int64, to talon.State, reason, by string) (talon.Run, error) {
	what := fmt.Sprintf("run %d", id)
	if to != talon.StateSucceeded && to != talon.StateFailed {
		return talon.Run{}, talon.Errorf(talon.EINVALID, "mark as %q: want succeeded or failed", to)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return talon.Run{}, talon.Errorf(talon.EINVALID, "mark run %d: say why (a reason is required, e.g. \"fixed by hand\")", id)
	}
	if by == "" {
		by = "user"
	}
	r, err := e.st.GetRun(ctx, id)
	if err != nil {
		return r, store.UserError(err, what)
	}
	switch {
	case r.State == talon.StateRunning:
		return r, talon.Errorf(talon.ECONFLICT, "run %d is running: cancel it first (talon cancel %d), then mark it", id, id)
	case r.State == to:
		return r, talon.Errorf(talon.ECONFLICT, "run %d is already %s", id, to)
	case !talon.CanMark(r.State, to):
		return r, talon.Errorf(talon.ECONFLICT, "run %d is %s and cannot be marked %s", id, r.State, to)
	}
	now := e.now()
	res, err := e.st.Transition(ctx, []store.Transition{{
		RunID: id, From: []talon.State{r.State}, To: to, Mark: true, Now: now,
		Reason: fmt.Sprintf("marked %s by %s: %s", to, by, reason),
	}})
	if err != nil {
		return r, store.UserError(err, what)
	}
	if res[0].Err != nil {
		return r, store.UserError(res[0].Err, what)
	}
	r = res[0].Run
	e.log.Info("run marked", "run", r.ID, "job", r.Job, "period", r.Period, "state", r.State, "by", by)
	// Like a run that ended: the loop re-checks its dependents and the
	// runs its limits held back, at once.
	changed := []int64{r.ID}
	if to == talon.StateSucceeded {
		cs := skipPaused(e.completionRuns(e.sched.Load(), r, now))
		if len(cs) > 0 {
			created, err := e.st.CreateRuns(ctx, cs)
			if err != nil {
				e.notify(changed...)
				return r, store.UserError(fmt.Errorf("run %d is marked, but its completion triggers did not fire: %w", id, err), what)
			}
			for _, c := range created {
				if c.Created {
					changed = append(changed, c.Run.ID)
				}
			}
		}
	}
	e.notify(changed...)
	return r, nil
}

// RecordAudit records one operation in the audit, at the engine's clock.
func (e *Engine) RecordAudit(ctx context.Context, a talon.AuditEntry) error {
	if a.Time.IsZero() {
		a.Time = e.now()
	}
	_, err := e.st.AddAudit(ctx, a)
	return store.UserError(err, "audit")
}
