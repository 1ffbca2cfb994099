package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/talonhq/talon/internal/suggest"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
)

// The engine serves the HTTP API.
var _ api.Backend = (*Engine)(nil)

// userErr turns store sentinels into errors users can act on.
func userErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return talon.Errorf(talon.ENOTFOUND, "%s not found", what)
	case errors.Is(err, store.ErrConflict):
		return talon.Errorf(talon.ECONFLICT, "%s changed state meanwhile; look again with talon show", what)
	case errors.Is(err, store.ErrUnavailable):
		return talon.Errorf(talon.EUNAVAILABLE, "the state store is unavailable; the scheduler retries and resumes by itself (%v)", err)
	}
	return err
}

// Jobs lists the jobs of the schedule in force.
func (e *Engine) Jobs(ctx context.Context) ([]api.JobInfo, error) {
	p := e.sched.Load()
	paused, err := e.pauses(ctx)
	if err != nil {
		return nil, userErr(err, "paused jobs")
	}
	out := make([]api.JobInfo, 0, len(p.s.Jobs))
	for _, j := range p.s.Jobs {
		ji := api.JobInfo{
			Name: j.Name, Description: j.Description, Period: string(j.Period.Type), Calendar: j.Period.Calendar,
			Timezone: j.Timezone, Environment: j.Environment, Executor: j.Executor,
			Triggers: []string{}, Constraints: []string{},
		}
		var next time.Time
		for i, t := range j.Triggers {
			switch {
			case t.Schedule != "":
				ji.Triggers = append(ji.Triggers, "schedule: "+t.Schedule)
				if i < len(j.Times) && j.Times[i] != nil {
					next = earliest(next, e.nextOf(j, t, j.Times[i], e.now()).At)
				}
			case t.After != "":
				ji.Triggers = append(ji.Triggers, "after: "+t.After)
			}
		}
		if !next.IsZero() {
			ji.Next = next.In(j.Location).Format(time.RFC3339)
		}
		for _, c := range j.Constraints {
			ji.Constraints = append(ji.Constraints, c.Kind)
		}
		ji.Errors = e.triggerErrors(j.Name)
		if pause, ok := paused[j.Name]; ok {
			ji.Paused = &pause
		}
		out = append(out, ji)
	}
	return out, nil
}

// Runs lists runs.
func (e *Engine) Runs(ctx context.Context, f store.RunFilter) ([]talon.Run, error) {
	if f.Period != "" {
		if _, err := parseKey(f.Period, nil); err != nil {
			return nil, talon.Errorf(talon.EINVALID, "%v", err)
		}
	}
	f.WithArtifacts = true
	runs, err := e.st.ListRuns(ctx, f)
	return runs, userErr(err, "runs")
}

// Run returns a run with its decisions and history.
func (e *Engine) Run(ctx context.Context, id int64) (api.RunDetail, error) {
	what := fmt.Sprintf("run %d", id)
	r, err := e.st.GetRun(ctx, id)
	if err != nil {
		return api.RunDetail{}, userErr(err, what)
	}
	ds, err := e.st.Decisions(ctx, id)
	if err != nil {
		return api.RunDetail{}, userErr(err, what)
	}
	evs, err := e.st.Events(ctx, id)
	if err != nil {
		return api.RunDetail{}, userErr(err, what)
	}
	if ds == nil {
		ds = []talon.Decision{}
	}
	if r.Artifacts == nil {
		r.Artifacts = []talon.Artifact{}
	}
	if evs == nil {
		evs = []talon.Event{}
	}
	res, err := e.runResources(ctx, r)
	if err != nil {
		return api.RunDetail{}, userErr(err, what)
	}
	return api.RunDetail{Run: r, Decisions: ds, Events: evs, Resources: res}, nil
}

// Periods lists periods with runs.
func (e *Engine) Periods(ctx context.Context, f store.PeriodFilter) ([]store.PeriodRow, error) {
	rows, err := e.st.ListPeriods(ctx, f)
	return rows, userErr(err, "periods")
}

// Trigger creates a run from an external request.
func (e *Engine) Trigger(ctx context.Context, job string, req api.TriggerRequest) (talon.Run, bool, error) {
	p := e.sched.Load()
	j := p.jobs[job]
	if j == nil {
		return talon.Run{}, false, talon.Errorf(talon.ENOTFOUND, "job %q not found%s", job, jobHint(job, p))
	}
	// A paused job takes no new runs: refused loudly, rather than created
	// to wait unseen for the resume.
	paused, err := e.pauses(ctx)
	if err != nil {
		return talon.Run{}, false, userErr(err, "job "+job)
	}
	if pause, ok := paused[job]; ok {
		return talon.Run{}, false, talon.Errorf(talon.ECONFLICT, "job %s is %s; resume it first (talon resume %s)", job, pause.Describe(), job)
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
		if err := inHorizon(req.Period, per, now); err != nil {
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
	res, err := e.st.CreateRuns(ctx, []store.CreateRun{{
		Job: job, Period: key, Environment: j.Environment, Trigger: talon.TriggerAPI, Key: req.Key,
		Executor: j.Executor, Params: req.Params, Now: now, Reason: "triggered by request",
	}})
	if err != nil {
		return talon.Run{}, false, userErr(err, "job "+job)
	}
	r := res[0]
	if r.Created {
		e.notify(r.Run.ID)
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

// jobHint is " (did you mean \"x\"?)" for a job name near name, or "".
func jobHint(name string, p *plan) string {
	names := make([]string, 0, len(p.jobs))
	for n := range p.jobs {
		names = append(names, n)
	}
	if hint := suggest.DidYouMean(name, names); hint != "" {
		return " (" + hint + ")"
	}
	return ""
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
		return r, userErr(err, what)
	}
	switch r.State {
	case talon.StateBlocked, talon.StateReady:
		res, err := e.st.Transition(ctx, []store.Transition{{
			RunID: id, From: []talon.State{talon.StateBlocked, talon.StateReady}, To: talon.StateSkipped,
			Reason: "cancelled by " + by, Now: e.now(),
		}})
		if err != nil {
			return r, userErr(err, what)
		}
		if res[0].Err != nil {
			return r, userErr(res[0].Err, what)
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
				return r, userErr(err, what)
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
		return r, userErr(err, what)
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
		return r, userErr(err, what)
	}
	if !res[0].Created {
		prev := res[0].Run
		return prev, talon.Errorf(talon.ECONFLICT, "run %d was already retried by run %d (attempt %d, %s); retry the latest attempt instead", id, prev.ID, prev.Attempt, prev.State)
	}
	e.notify(res[0].Run.ID)
	return res[0].Run, nil
}

// Logs opens a run's log file.
func (e *Engine) Logs(ctx context.Context, id int64) (io.ReadCloser, error) {
	r, err := e.st.GetRun(ctx, id)
	if err != nil {
		return nil, userErr(err, fmt.Sprintf("run %d", id))
	}
	f, err := os.Open(e.LogPath(r))
	if errors.Is(err, os.ErrNotExist) {
		if r.Started == nil {
			return nil, talon.Errorf(talon.ENOTFOUND, "run %d has no log: it never started (%s)", id, r.State)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	return f, err
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
	return userErr(err, fmt.Sprintf("run %d", id))
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

// Talon's horizon: the periods a trigger or backfill may name. Times
// before the Unix epoch are not Talon's to schedule (the @every grid and
// the stored clock start there), and a period a century ahead is a typo,
// not a plan; the bound also keeps period arithmetic far from year 9999,
// past which keys have no form.
const horizonYears = 100

var horizonStart = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// inHorizon refuses a period that starts before 1970-01-01 or more than
// horizonYears after now. key is the period as the user wrote it.
func inHorizon(key string, per talon.Period, now time.Time) error {
	if per.Type == talon.Oneshot {
		return nil // named, not dated
	}
	// Compare calendar dates in the period's zone, so that 1970-01-01 is
	// in the horizon east of UTC too.
	date := func(t time.Time) time.Time {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	start := date(per.Start)
	end := date(now.In(per.Start.Location())).AddDate(horizonYears, 0, 0)
	if start.Before(horizonStart) || start.After(end) {
		return talon.Errorf(talon.EINVALID, "period %q is beyond Talon's horizon: a period must start between %s and %d years from now (%s)",
			key, horizonStart.Format(time.DateOnly), horizonYears, end.Format(time.DateOnly))
	}
	return nil
}

// maxPeriodRange bounds one period range (a backfill of 270 years of days).
const maxPeriodRange = 100000

// PeriodRange lists job's period keys from one key to another, inclusive,
// following the job's zone and calendar.
func (e *Engine) PeriodRange(ctx context.Context, job, from, to string) ([]string, error) {
	p := e.sched.Load()
	j := p.jobs[job]
	if j == nil {
		return nil, talon.Errorf(talon.ENOTFOUND, "job %q not found%s", job, jobHint(job, p))
	}
	if j.Period.Type == talon.Oneshot {
		return nil, talon.Errorf(talon.EINVALID, "job %s has oneshot periods, which have no range; trigger each with --period oneshot/NAME", job)
	}
	bounds := make([]talon.Period, 2)
	for i, k := range []string{from, to} {
		per, err := parseKey(k, j)
		if err != nil {
			return nil, talon.Errorf(talon.EINVALID, "%v", err)
		}
		if per.Type != j.Period.Type {
			return nil, talon.Errorf(talon.EINVALID, "period %q is %s but job %s runs for %s periods", k, per.Type, job, j.Period.Type)
		}
		if err := inHorizon(k, per, e.now()); err != nil {
			return nil, err
		}
		if per.Environment == "" {
			per.Environment = j.Environment
		}
		// Start from the period containing the key's start, so that with
		// a business calendar a holiday key snaps to its business day.
		if per, err = periodAt(j, per.Start, talon.PeriodSame); err != nil {
			return nil, talon.Errorf(talon.EINVALID, "period %q: %v", k, err)
		}
		bounds[i] = per
	}
	if bounds[1].Start.Before(bounds[0].Start) {
		return nil, talon.Errorf(talon.EINVALID, "period range %s to %s is backwards; put the earlier period first", from, to)
	}
	var keys []string
	for per := bounds[0]; !per.Start.After(bounds[1].Start); {
		if len(keys) == maxPeriodRange {
			return nil, talon.Errorf(talon.EINVALID, "period range %s to %s has more than %d periods; split it", from, to, maxPeriodRange)
		}
		keys = append(keys, per.Key())
		next, err := calendar.Shift(per, 1, j.Calendar)
		if err != nil {
			return nil, talon.Errorf(talon.EINVALID, "period after %s: %v", per.Key(), err)
		}
		per = next
	}
	return keys, nil
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
