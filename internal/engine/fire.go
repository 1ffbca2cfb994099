package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/trigger"
)

// maxFiresPerStep bounds the fires one trigger may produce in one step
// (a minutely trigger after a week of downtime), so a step stays short.
// Missed fires beyond it are summed up in one recorded skip.
const maxFiresPerStep = 1000

// maxRecordedSkips bounds the skipped runs recorded one by one for a
// trigger in one step; older missed fires are summed up in one record.
const maxRecordedSkips = 100

// fire creates the runs of every time trigger due at now, following each
// job's catch-up policy for fires missed while no scheduler ran, and
// returns the next fire instant of all triggers.
func (e *Engine) fire(ctx context.Context, p *plan, now time.Time) (time.Time, error) {
	// Steps come at every event (a run ending); walking 100,000 jobs each
	// time would dominate them. Until the earliest next fire, nothing is due.
	// A zero fireWake with fireReady means no trigger will fire again.
	if e.fireReady && (e.fireWake.IsZero() || now.Before(e.fireWake)) {
		return e.fireWake, nil
	}
	var (
		creates []store.CreateRun
		cursors []store.CursorUpdate
		next    time.Time
	)
	e.fireReady = false
	// A paused job's fires are recorded as skipped. The pauses are read
	// once per round of fires; a pause written meanwhile by another
	// scheduler is still enforced by the store, which keeps the runs of a
	// paused job from entering ready.
	paused, err := e.pauses(ctx)
	if err != nil {
		return next, fmt.Errorf("read paused jobs: %w", err)
	}
	for _, j := range p.s.Jobs {
		for i, t := range j.Triggers {
			if i >= len(j.Times) || j.Times[i] == nil {
				continue
			}
			key := j.Name + "\x00" + t.ID
			nf, ok := e.nextFire[key]
			if !ok {
				cursor, found, err := e.st.Cursor(ctx, j.Name, t.ID)
				if err != nil {
					return next, err
				}
				if !found {
					// A trigger seen for the first time starts now; it does
					// not backfill from the beginning of time (use
					// `talon backfill` for that).
					cursor = now
					cursors = append(cursors, store.CursorUpdate{Job: j.Name, Trigger: t.ID, Fired: now})
				}
				nf = e.nextOf(j, t, j.Times[i], cursor)
			}
			var fires []trigger.Fire
			for !nf.At.IsZero() && !nf.At.After(now) && len(fires) < maxFiresPerStep {
				fires = append(fires, nf)
				nf = e.nextOf(j, t, j.Times[i], nf.At)
			}
			e.nextFire[key] = nf
			next = earliest(next, nf.At)
			if len(fires) == 0 {
				continue
			}
			var pause *talon.Pause
			if ps, ok := paused[j.Name]; ok {
				pause = &ps
			}
			cs, err := e.catchup(j, t, fires, now, !nf.At.IsZero() && !nf.At.After(now), pause)
			if err != nil {
				// One job's bad calendar must not stop the others: this
				// trigger stops (its cursor stays, so a reload with a fixed
				// schedule fires what it missed) and operators see why.
				e.setTriggerErr(j, t, err.Error())
				e.nextFire[key] = trigger.Fire{}
				continue
			}
			creates = append(creates, cs...)
			cursors = append(cursors, store.CursorUpdate{Job: j.Name, Trigger: t.ID, Fired: fires[len(fires)-1].At})
		}
	}
	if err := e.create(ctx, creates); err != nil {
		// Forget the computed fires so the next step recomputes them from
		// the stored cursors: nothing is lost, creation is idempotent.
		clear(e.nextFire)
		return next, err
	}
	if len(cursors) > 0 {
		if err := e.st.AdvanceCursors(ctx, cursors); err != nil {
			clear(e.nextFire)
			return next, err
		}
	}
	e.fireWake, e.fireReady = next, true
	return next, nil
}

// catchup decides, for the fires of one trigger due at now, which create
// runs and which are recorded as skipped. A fire is missed when it is
// older than the grace period. more says fires beyond maxFiresPerStep
// remain (they will be handled in the next step). When the job is paused
// every fire is recorded as skipped, with who paused it: the fires of a
// pause are not caught up on resume.
func (e *Engine) catchup(j *schedule.Job, t talon.TriggerSpec, fires []trigger.Fire, now time.Time, more bool, pause *talon.Pause) ([]store.CreateRun, error) {
	policy := j.Catchup
	cutoff := now.Add(-e.cfg.Grace)
	onTime := 0
	for _, f := range fires {
		if !f.At.Before(cutoff) {
			onTime++
		}
	}
	missed := fires[:len(fires)-onTime]
	keep := make([]bool, len(fires))
	for i := len(missed); i < len(fires); i++ {
		keep[i] = true
	}
	switch policy {
	case talon.CatchupAll:
		for i, f := range missed {
			keep[i] = j.CatchupWindow <= 0 || !f.At.Before(now.Add(-j.CatchupWindow))
		}
	case talon.CatchupLatest:
		if onTime == 0 && len(missed) > 0 && !more {
			f := missed[len(missed)-1]
			keep[len(missed)-1] = j.CatchupWindow <= 0 || !f.At.Before(now.Add(-j.CatchupWindow))
		}
	}
	if pause != nil {
		clear(keep)
	}
	var out []store.CreateRun
	skipped := 0
	for i := len(fires) - 1; i >= 0; i-- {
		fire := fires[i]
		f := fire.Nominal
		per, err := fire.Period(j.Periods(), t.Period)
		if err != nil {
			return nil, fmt.Errorf("job %s: period of fire at %s: %w", j.Name, f.Format(time.RFC3339), err)
		}
		c := store.CreateRun{
			Job: j.Name, Period: per.Key(), Environment: j.Environment, Trigger: t.ID,
			FireTime: f, Executor: j.Executor, Now: now,
			Reason: "fired by " + t.ID + " at " + f.In(j.Location).Format(time.RFC3339),
		}
		if fire.At.After(f) {
			// Jitter delays the start, never the fire's identity or period.
			c.NotBefore = fire.At
			c.Reason += " (jittered to " + fire.At.In(j.Location).Format(time.RFC3339) + ")"
		}
		if !keep[i] {
			skipped++
			if skipped > maxRecordedSkips {
				continue
			}
			c.State = talon.StateSkipped
			c.Reason = fmt.Sprintf("missed fire at %s while no scheduler was running (catchup: %s)", f.In(j.Location).Format(time.RFC3339), policy)
			if j.CatchupWindow > 0 && f.Before(now.Add(-j.CatchupWindow)) {
				c.Reason = fmt.Sprintf("missed fire at %s is older than catchup_window %s", f.In(j.Location).Format(time.RFC3339), j.CatchupWindow)
			}
			if pause != nil {
				c.Reason = fmt.Sprintf("fire at %s skipped: job %s", f.In(j.Location).Format(time.RFC3339), pause.Describe())
			}
			c.NotBefore = time.Time{}
			if skipped == maxRecordedSkips && i > 0 {
				c.Reason += fmt.Sprintf("; %d earlier fires from %s were skipped too", i, fires[0].Nominal.In(j.Location).Format(time.RFC3339))
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// create creates runs in chunks and indexes the blocked ones for a check.
func (e *Engine) create(ctx context.Context, cs []store.CreateRun) error {
	const chunk = 1000
	for len(cs) > 0 {
		n := min(chunk, len(cs))
		res, err := e.st.CreateRuns(ctx, cs[:n])
		if err != nil {
			return fmt.Errorf("create runs: %w", err)
		}
		e.index(res, cs[0].Now)
		cs = cs[n:]
	}
	return nil
}

// index indexes the blocked runs among those just created for a check,
// at once unless their recheck time is after now.
func (e *Engine) index(res []store.Created, now time.Time) {
	for _, r := range res {
		if r.Run.ID == 0 {
			continue // not created
		}
		if r.Run.State == talon.StateBlocked {
			next := r.Run.RecheckAt
			if !next.After(now) {
				next = time.Time{}
			}
			e.track(r.Run.ID, r.Run.Job, next)
			switch {
			case next.IsZero():
				e.fresh[r.Run.ID] = r.Run
			case r.Created:
				// Only a run this call created has its delay as its
				// recheck time; one that held the key (a peer's, already
				// decided) has the time of its next poll, which a change
				// it waits for must not wait out.
				e.waiting[r.Run.ID].notBefore = next
			}
		}
		if r.Created {
			e.log.Debug("run created", "run", r.Run.ID, "job", r.Run.Job, "period", r.Run.Period, "state", r.Run.State)
		}
	}
}

// nextOf returns the next fire of a job's trigger after an instant. An
// error (a business calendar that ends before the next fire) is logged
// and kept for `talon jobs` and the API: the trigger stops firing until
// the schedule is fixed and reloaded, loudly rather than silently.
func (e *Engine) nextOf(j *schedule.Job, t talon.TriggerSpec, tr trigger.Trigger, after time.Time) trigger.Fire {
	f, err := trigger.NextFire(tr, after)
	if err != nil {
		e.setTriggerErr(j, t, fmt.Sprintf("stopped after %s: %v", after.In(j.Location).Format(time.RFC3339), err))
		return trigger.Fire{}
	}
	return f
}

// NextFire is the next fire of j's time triggers after after (zero when
// none fires again), as the loop computes it: a trigger that cannot fire
// again has its error recorded for TriggerErrors.
func (e *Engine) NextFire(j *schedule.Job, after time.Time) time.Time {
	var next time.Time
	for i, t := range j.Triggers {
		if t.Schedule != "" && i < len(j.Times) && j.Times[i] != nil {
			next = earliest(next, e.nextOf(j, t, j.Times[i], after).At)
		}
	}
	return next
}

// setTriggerErr records why a trigger stopped, logging it once. The
// record stays until a reload, which restarts every trigger.
func (e *Engine) setTriggerErr(j *schedule.Job, t talon.TriggerSpec, why string) {
	key := j.Name + "\x00" + t.ID
	msg := "trigger " + t.ID + " " + why
	e.trigErrMu.Lock()
	defer e.trigErrMu.Unlock()
	if e.trigErr[key] != msg {
		e.log.Error("trigger stopped", "job", j.Name, "trigger", t.ID, "why", why)
	}
	e.trigErr[key] = msg
}

// TriggerErrors says why job's triggers stopped firing, for operators;
// each stays until a reload.
func (e *Engine) TriggerErrors(job string) []string {
	e.trigErrMu.Lock()
	defer e.trigErrMu.Unlock()
	var out []string
	for k, msg := range e.trigErr {
		if strings.HasPrefix(k, job+"\x00") {
			out = append(out, msg)
		}
	}
	sort.Strings(out)
	return out
}
