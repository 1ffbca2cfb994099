package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
)

// dispatch starts ready runs on their executors and records them running.
func (e *Engine) dispatch(ctx context.Context, p *plan, ready []talon.Run, now time.Time) error {
	if len(ready) == 0 {
		return nil
	}
	if !e.leaseValid(now) {
		return e.unready(ctx, ready, now)
	}
	fenceIn := e.fenceIn(now)
	// A run that holds resources must learn which; if they cannot be
	// read it fails (releasing them) rather than starting blind.
	held, heldErr := e.holds(ctx, p, ready)
	ts := make([]store.Transition, 0, len(ready))
	started := make([]*proc, len(ready))
	for i, r := range ready {
		j := p.jobs[r.Job]
		fail := func(reason string) {
			ts = append(ts, store.Transition{RunID: r.ID, From: []talon.State{talon.StateReady}, To: talon.StateFailed, Reason: reason, Now: now})
		}
		if j == nil {
			fail(fmt.Sprintf("job %q left the schedule before the run started", r.Job))
			continue
		}
		ex := e.cfg.Executors[j.Executor]
		if ex == nil {
			fail(fmt.Sprintf("could not start: unknown executor %q", j.Executor))
			continue
		}
		spec, err := e.spec(r, j)
		if err != nil {
			fail("could not start: " + err.Error())
			continue
		}
		if heldErr != nil && p.isRes[r.Job] {
			fail("could not start: read resource holds: " + heldErr.Error())
			continue
		}
		if hs, ok := held[r.ID]; ok {
			spec.Env = append(spec.Env, "TALON_RESOURCES="+resourcesEnv(hs))
			spec.Resources = specResources(p.tree, hs)
		}
		spec.FenceIn = fenceIn
		if q, ok := ex.(executor.Quick); ok && q.Quick() {
			pc, err := e.launch(ctx, ex, spec, r, j, now)
			ts = append(ts, e.startedTransition(r, j, pc, err, now))
			started[i] = pc
			continue
		}
		// Starting may take long (a fork, a connection): it happens off
		// the loop, a few at a time, and the loop records the outcome.
		e.inflight.Add(1)
		go func() {
			e.startSem <- struct{}{}
			pc, err := e.launch(ctx, ex, spec, r, j, e.now())
			<-e.startSem
			e.mu.Lock()
			e.started = append(e.started, startResult{run: r, pc: pc, err: err})
			e.mu.Unlock()
			e.inflight.Add(-1)
			// The process's end is reported after its start, so the
			// loop records running before it records the outcome.
			if pc != nil {
				e.watch(pc)
			}
			e.Kick()
		}()
	}
	for _, pc := range started {
		if pc != nil {
			e.watch(pc)
		}
	}
	return e.apply(ctx, p, now, ts)
}

// startRecorded starts runs already recorded running (see prestart); a
// start that fails is recorded as the run's failure.
func (e *Engine) startRecorded(ctx context.Context, p *plan, runs []talon.Run, now time.Time) error {
	if len(runs) == 0 {
		return nil
	}
	fenceIn := e.fenceIn(now)
	var failed []store.Transition
	for _, r := range runs {
		j := p.jobs[r.Job]
		ex := e.cfg.Executors[j.Executor]
		spec, err := e.spec(r, j)
		var pc *proc
		if err == nil {
			spec.FenceIn = fenceIn
			pc, err = e.launch(ctx, ex, spec, r, j, now)
		}
		if err != nil {
			failed = append(failed, store.Transition{RunID: r.ID, From: []talon.State{talon.StateRunning}, To: talon.StateFailed,
				Reason: "could not start: " + err.Error(), Now: now})
			continue
		}
		e.watch(pc)
	}
	return e.apply(ctx, p, now, failed)
}

// startResult is an executor start that happened off the loop.
type startResult struct {
	run talon.Run
	pc  *proc // nil if the start failed
	err error
}

// launch starts a run on its executor and registers the process, so that
// cancels and timeouts reach it from the moment it exists.
func (e *Engine) launch(ctx context.Context, ex executor.Executor, spec executor.Spec, r talon.Run, j *schedule.Job, now time.Time) (*proc, error) {
	// Processes outlive this step; they are stopped through Cancel.
	pr, err := ex.Start(context.WithoutCancel(ctx), spec)
	if err != nil {
		return nil, err
	}
	pc := &proc{run: r, p: pr, started: now, secrets: spec.Secrets}
	if j.Timeout > 0 {
		pc.deadline = now.Add(j.Timeout)
	}
	e.procsMu.Lock()
	e.procs[r.ID] = pc
	e.procsMu.Unlock()
	e.log.Info("run started", "run", r.ID, "job", r.Job, "period", r.Period, "attempt", r.Attempt, "executor", j.Executor)
	return pc, nil
}

// startedTransition records a start: running with its handle, or failed.
func (e *Engine) startedTransition(r talon.Run, j *schedule.Job, pc *proc, err error, now time.Time) store.Transition {
	if err != nil {
		return store.Transition{RunID: r.ID, From: []talon.State{talon.StateReady}, To: talon.StateFailed, Reason: "could not start: " + err.Error(), Now: now}
	}
	name := r.Executor
	if j != nil {
		name = j.Executor
	}
	return store.Transition{
		RunID: r.ID, From: []talon.State{talon.StateReady}, To: talon.StateRunning,
		Reason: "started on " + name, Now: pc.started, Handle: pc.p.Handle(), Owner: e.instance.ID,
	}
}

// watch reports the process's end to the loop.
func (e *Engine) watch(pc *proc) {
	go func() {
		out := pc.p.Wait()
		at := e.now()
		if !out.Ended.IsZero() && out.Ended.Before(at) {
			at = out.Ended // it ended while no scheduler watched it
		}
		e.mu.Lock()
		e.done = append(e.done, completion{runID: pc.run.ID, outcome: out, at: at})
		e.mu.Unlock()
		e.Kick()
	}()
}

// recordStarts records the starts that happened off the loop; they go
// before the outcomes of the same processes.
func (e *Engine) recordStarts(ctx context.Context, p *plan, now time.Time) error {
	e.mu.Lock()
	rs := e.started
	e.started = nil
	e.mu.Unlock()
	if len(rs) == 0 {
		return nil
	}
	ts := make([]store.Transition, len(rs))
	for i, s := range rs {
		ts[i] = e.startedTransition(s.run, p.jobs[s.run.Job], s.pc, s.err, now)
	}
	return e.apply(ctx, p, now, ts)
}

// unready puts runs back to blocked, releasing what they hold, when this
// scheduler may not start them: its lease lapsed, so a peer may be
// declaring them lost. They are checked again at once.
func (e *Engine) unready(ctx context.Context, ready []talon.Run, now time.Time) error {
	ts := make([]store.Transition, len(ready))
	for i, r := range ready {
		ts[i] = store.Transition{RunID: r.ID, From: []talon.State{talon.StateReady}, To: talon.StateBlocked, Now: now,
			Reason: "not started: this scheduler's lease lapsed; checked again once it is renewed"}
	}
	res, err := e.st.Transition(ctx, ts)
	if err != nil {
		return fmt.Errorf("put runs back to blocked: %w", err)
	}
	for _, rs := range res {
		if rs.Err == nil {
			e.track(rs.Run.ID, rs.Run.Job, now.Add(time.Second))
		}
	}
	return nil
}

// holds reads what the ready runs of jobs asking for resources hold.
func (e *Engine) holds(ctx context.Context, p *plan, ready []talon.Run) (map[int64][]resource.Hold, error) {
	var ids []int64
	for _, r := range ready {
		if p.isRes[r.Job] {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	hs, err := e.st.Holds(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]resource.Hold, len(ids))
	for _, id := range ids {
		out[id] = []resource.Hold{}
	}
	for _, h := range hs {
		out[h.RunID] = append(out[h.RunID], h)
	}
	return out, nil
}

// resourcesEnv is TALON_RESOURCES: the run's holds as a JSON object from
// path to units, e.g. {"db/prod/connections":2,"hosts/linux/h02":1}, so a
// job reads its host with one lookup.
func resourcesEnv(hs []resource.Hold) string {
	m := make(map[string]int, len(hs))
	for _, h := range hs {
		m[h.Path] += h.Units
	}
	b, _ := json.Marshal(m) // a map of strings to ints always encodes
	return string(b)
}

// specResources are a run's holds with their nodes' attributes.
func specResources(tree *resource.Tree, hs []resource.Hold) []executor.Resource {
	out := make([]executor.Resource, 0, len(hs))
	for _, h := range hs {
		r := executor.Resource{Path: h.Path, Units: h.Units}
		if n, ok := tree.Node(h.Path); ok {
			r.Attributes = n.Attributes
		}
		out = append(out, r)
	}
	return out
}

// recordCompletions records the runs whose processes ended.
func (e *Engine) recordCompletions(ctx context.Context, p *plan, now time.Time) error {
	ts, _ := e.completions(ctx, p, now)
	return e.apply(ctx, p, now, ts)
}

// completions takes the runs whose processes ended and returns the
// transitions that record them, with the jobs of those runs.
func (e *Engine) completions(ctx context.Context, p *plan, now time.Time) ([]store.Transition, []string) {
	e.mu.Lock()
	done := e.done
	e.done = nil
	// A process that started off the loop and ended between
	// recordStarts and now has its start still unrecorded: its end, whose
	// transition expects running, waits for the next step, after the
	// start (whose goroutine kicked the loop). Recorded now, it would be
	// refused and the run left running for good.
	if len(e.started) > 0 {
		pending := make(map[int64]bool, len(e.started))
		for _, s := range e.started {
			pending[s.run.ID] = true
		}
		var record []completion
		for _, c := range done {
			if pending[c.runID] {
				e.done = append(e.done, c)
			} else {
				record = append(record, c)
			}
		}
		done = record
	}
	e.mu.Unlock()
	if len(done) == 0 {
		return nil, nil
	}
	ts := make([]store.Transition, 0, len(done))
	jobs := make([]string, 0, len(done))
	for _, c := range done {
		to := talon.StateFailed
		if c.outcome.Succeeded {
			to = talon.StateSucceeded
		}
		// The run finished when its process ended (not when this step
		// records it, which may be after a store outage), but never before
		// it was recorded running.
		at := c.at
		e.procsMu.Lock()
		if pc := e.procs[c.runID]; pc != nil {
			if at.Before(pc.started) {
				at = pc.started
			}
			// An operator's cancel stops the job for good; a timeout is
			// retried only when the job says so.
			if !c.outcome.Succeeded && (pc.cancelled || pc.timedOut && !timeoutRetried(p, pc.run.Job)) {
				e.noRetry[c.runID] = true
			}
		}
		var run talon.Run
		if pc := e.procs[c.runID]; pc != nil {
			run = pc.run
		}
		delete(e.procs, c.runID)
		e.procsMu.Unlock()
		reason := c.outcome.Reason
		if reason == "" {
			reason = string(to)
		}
		if to == talon.StateSucceeded && run.ID != 0 {
			reason += e.missingArtifacts(ctx, p, run)
		}
		t := store.Transition{RunID: c.runID, From: []talon.State{talon.StateRunning}, To: to, Reason: reason, Now: at}
		jobs = append(jobs, run.Job) // "" when unknown
		if run.ID != 0 {
			// What follows the end is created in the transaction that
			// records it: one commit, and no end without its follow-ups.
			t.Then = e.followUps(p, run, to, store.NowOr(at), now)
		}
		ts = append(ts, t)
	}
	return ts, jobs
}

// followUps are the runs that follow r's end in state to at finished:
// the runs its success fires, or its failure's retry. The result is
// never nil, so apply knows they were asked for with the end.
func (e *Engine) followUps(p *plan, r talon.Run, to talon.State, finished, now time.Time) []store.CreateRun {
	out := []store.CreateRun{}
	j := p.jobs[r.Job]
	if j == nil {
		return out
	}
	r.State, r.Finished = to, &finished
	switch to {
	case talon.StateSucceeded:
		out = append(out, skipPaused(e.completionRuns(p, r, now))...)
	case talon.StateFailed:
		if e.noRetry[r.ID] {
			break
		}
		if c, ok := retryOf(j, r, now); ok {
			out = append(out, c)
		}
	}
	return out
}

// apply records transitions of dispatched runs and what follows a run's
// end: dependents are re-checked at once, completion triggers fire, and
// failed runs are retried. If the store is unreachable the transitions
// are kept and applied first in the next step: a finished run is never
// forgotten.
func (e *Engine) apply(ctx context.Context, p *plan, now time.Time, ts []store.Transition) error {
	if len(ts) == 0 {
		return nil
	}
	res, err := e.st.Transition(ctx, ts)
	if err != nil {
		e.pendingTx = append(e.pendingTx, ts...)
		return fmt.Errorf("record run transitions: %w", err)
	}
	return e.applied(ctx, p, now, ts, res)
}

// applied is what follows apply's transitions ts once the store has
// answered them with res.
func (e *Engine) applied(ctx context.Context, p *plan, now time.Time, ts []store.Transition, res []store.Result) error {
	defer func() {
		for _, t := range ts {
			delete(e.noRetry, t.RunID)
		}
	}()
	var creates, fired []store.CreateRun
	for i, rs := range res {
		// The runs created with the transition (Then), also when it was
		// refused because an earlier attempt applied it.
		e.index(rs.Then, now)
		if rs.Err != nil {
			if ts[i].To == talon.StateRunning {
				// The run left ready before it was recorded running (a
				// cancel won the race): stop what we started.
				e.procsMu.Lock()
				pc := e.procs[ts[i].RunID]
				e.procsMu.Unlock()
				if pc != nil {
					pc.p.Cancel(fmt.Errorf("run left ready before it started: %w", rs.Err))
				}
			}
			e.log.Warn("run transition refused", "run", ts[i].RunID, "to", ts[i].To, "err", rs.Err)
			continue
		}
		r := rs.Run
		if !r.State.Terminal() {
			continue
		}
		if rs.Counts != nil {
			e.seeds[store.JobPeriod{Job: r.Job, Period: r.Period}] = rs.Counts
		}
		e.log.Info("run ended", "run", r.ID, "job", r.Job, "period", r.Period, "state", r.State, "reason", r.Reason)
		e.touchJobs(p.dependents(r.Job)...)
		e.touchJobs(p.freed(r.Job)...)
		j := p.jobs[r.Job]
		if j == nil || ts[i].Then != nil {
			continue // nothing follows, or it was created with the end
		}
		switch r.State {
		case talon.StateSucceeded:
			fired = append(fired, e.completionRuns(p, r, now)...)
		case talon.StateFailed:
			if e.noRetry[r.ID] {
				break
			}
			if c, ok := retryOf(j, r, now); ok {
				creates = append(creates, c)
			}
		}
	}
	creates = append(creates, skipPaused(fired)...)
	if err := e.create(ctx, creates); err != nil {
		// The transitions are recorded; the runs that follow from them
		// (retries, completion triggers) are created at the next step.
		// Creation is idempotent on their keys, so trying again is safe.
		e.pendingCreate = append(e.pendingCreate, creates...)
		return err
	}
	return nil
}

// completionRuns are the runs of jobs triggered by r's success.
func (e *Engine) completionRuns(p *plan, r talon.Run, now time.Time) []store.CreateRun {
	var out []store.CreateRun
	for _, ct := range p.downstream[r.Job] {
		key, err := downstreamPeriod(p.jobs[r.Job], ct, r)
		if err != nil {
			e.log.Error("completion trigger: period", "job", ct.job.Name, "upstream_run", r.ID, "err", err)
			continue
		}
		fired := now
		if r.Finished != nil {
			fired = *r.Finished
		}
		// The run is created when its upstream finished at the earliest,
		// even when this step began before the process ended.
		out = append(out, store.CreateRun{
			Job: ct.job.Name, Period: key, Environment: ct.job.Environment, Trigger: ct.trigger.ID,
			FireTime: fired, Executor: ct.job.Executor, Now: later(now, fired),
			Reason: fmt.Sprintf("fired by %s: run %d of %s succeeded", ct.trigger.ID, r.ID, r.Job),
		})
	}
	return out
}

// downstreamPeriod maps the upstream run's period to the downstream job's:
// the same key when both jobs have the same period type (so a daily load
// after a daily extract runs for the same day), else the downstream period
// containing the upstream period's start; `period: previous` shifts it.
func downstreamPeriod(up *schedule.Job, ct completionTrigger, r talon.Run) (string, error) {
	down := ct.job
	per, err := parseKey(r.Period, up)
	if err != nil {
		return "", err
	}
	if up != nil && up.Period.Type == down.Period.Type && ct.trigger.Period != talon.PeriodPrevious {
		per.Environment = down.Environment
		return per.Key(), nil
	}
	if per.Type == talon.Oneshot {
		if down.Period.Type == talon.Oneshot {
			per.Environment = down.Environment
			return per.Key(), nil
		}
		at := r.Created
		if r.Finished != nil {
			at = *r.Finished
		}
		dp, err := periodAt(down, at, ct.trigger.Period)
		return dp.Key(), err
	}
	dp, err := periodAt(down, per.Start, ct.trigger.Period)
	return dp.Key(), err
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// timeoutRetried reports whether job's runs that time out are retried.
func timeoutRetried(p *plan, job string) bool {
	j := p.jobs[job]
	return j != nil && j.Retries.Timeouts
}

// retryOf returns the next attempt of a failed run if its job allows one.
// Only failures of execution (exit status, lost, could not start, and a
// timeout when the job says so) reach it: the caller leaves out runs an
// operator cancelled, and a constraint that answers fail (a missed
// start_by) is never retried, since it would only fail again.
func retryOf(j *schedule.Job, r talon.Run, now time.Time) (store.CreateRun, bool) {
	if r.Attempt > j.Retries.Max {
		return store.CreateRun{}, false
	}
	if r.Finished != nil {
		now = later(now, *r.Finished)
	}
	return store.CreateRun{
		Job: r.Job, Period: r.Period, Environment: r.Environment, Trigger: talon.TriggerRetry,
		Key: store.RetryKey(r.ID), Executor: r.Executor, Attempt: r.Attempt + 1,
		RetryOf: r.ID, Params: r.Params, Now: now, NotBefore: now.Add(j.Retries.Delay),
		Reason: fmt.Sprintf("retry %d of %d after run %d: %s", r.Attempt, j.Retries.Max, r.ID, r.Reason),
	}, true
}

// timeouts cancels runs past their deadline and returns the next deadline.
func (e *Engine) timeouts(now time.Time) time.Time {
	var next time.Time
	e.procsMu.Lock()
	defer e.procsMu.Unlock()
	for _, pc := range e.procs {
		if pc.deadline.IsZero() || pc.timedOut {
			continue
		}
		if !now.Before(pc.deadline) {
			pc.timedOut = true
			j := e.sched.Load().jobs[pc.run.Job]
			d := time.Duration(0)
			if j != nil {
				d = j.Timeout
			}
			pc.p.Cancel(fmt.Errorf("timeout after %s", d))
			continue
		}
		next = earliest(next, pc.deadline)
	}
	return next
}

// spec builds what the executor needs: the TALON_* environment, the
// parameters as JSON and the log file, which is addressed by run id.
func (e *Engine) spec(r talon.Run, j *schedule.Job) (executor.Spec, error) {
	params := map[string]any{}
	maps.Copy(params, j.Params)
	for k, v := range r.Params {
		params[k] = v
	}
	pj, err := json.Marshal(params)
	if err != nil {
		return executor.Spec{}, fmt.Errorf("params of job %s: %w", j.Name, err)
	}
	env, secrets, err := e.secretEnv(j)
	if err != nil {
		return executor.Spec{}, err
	}
	env = append(env,
		"TALON_RUN_ID="+strconv.FormatInt(r.ID, 10),
		"TALON_JOB="+r.Job,
		"TALON_PERIOD="+r.Period,
		"TALON_ATTEMPT="+strconv.Itoa(r.Attempt),
		"TALON_PARAMS="+string(pj),
	)
	if r.Environment != "" {
		env = append(env, "TALON_ENVIRONMENT="+r.Environment)
	}
	if e.cfg.URL != "" {
		env = append(env, "TALON_URL="+e.cfg.URL)
	}
	if e.cfg.CAFile != "" {
		env = append(env, "TALON_CA="+e.cfg.CAFile)
	}
	// Always set, empty when no token is minted: a token in the
	// scheduler's own environment (an operator's) must not reach jobs.
	token := ""
	if e.cfg.RunToken != nil {
		token = e.cfg.RunToken(r.ID)
	}
	env = append(env, "TALON_TOKEN="+token)
	if per, err := parseKey(r.Period, j); err == nil && !per.Start.IsZero() {
		env = append(env, "TALON_PERIOD_START="+per.Start.Format(time.RFC3339), "TALON_PERIOD_END="+per.End.Format(time.RFC3339))
	}
	return executor.Spec{
		Run: r, Job: &j.Job, Env: env, Params: pj, Secrets: secrets,
		LogPath: e.LogPath(r),
		// The store keeps the output too, so every scheduler sharing it
		// shows the log (talon logs), whoever ran the run.
		Logs:     e.st,
		LogLimit: e.cfg.LogLimit,
		OnLine:   e.onLine(r.ID),
	}, nil
}

// secretEnv reads the secrets of a job's env, now that a run starts: a
// file (without one trailing newline) or a variable of the server's
// environment. It returns them as KEY=VALUE and their values, for
// masking. A secret that cannot be read is an error naming the variable
// and its source, never the value: the run fails to start with it.
func (e *Engine) secretEnv(j *schedule.Job) (env, values []string, err error) {
	keys := make([]string, 0, len(j.Env))
	for k, v := range j.Env {
		if v.Secret() {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := j.Env[k]
		var val string
		switch {
		case v.File != "":
			b, err := e.cfg.ReadFile(v.File)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err // the path is named below
				}
				return nil, nil, fmt.Errorf("secret %s: read %s: %v", k, v.File, err)
			}
			val = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		default:
			s, ok := e.cfg.LookupEnv(v.Env)
			if !ok {
				return nil, nil, fmt.Errorf("secret %s: the server's environment has no variable %s", k, v.Env)
			}
			val = s
		}
		env = append(env, k+"="+val)
		values = append(values, val)
	}
	return env, values, nil
}

// LogPath is where a run's output is kept. It is built from the job name
// (validated by the schedule loader) and the run id, never from a path a
// request supplied.
func (e *Engine) LogPath(r talon.Run) string { return logPath(e.cfg.LogDir, r) }

// logPath is where a scheduler whose log directory is dir keeps run r's
// output.
func logPath(dir string, r talon.Run) string {
	return filepath.Join(dir, filepath.Base(r.Job), strconv.FormatInt(r.ID, 10)+".log")
}

// onLine reads "::talon progress 40%" and "::talon artifact URL [NAME]"
// lines, so executors that cannot reach the API can still report. The
// rules are those of the API: talon.ParseProgress and Progress.Validate,
// artifact.CheckURL.
func (e *Engine) onLine(runID int64) func(string) {
	return func(line string) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "::talon ")
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(rest), " ")
		arg = strings.TrimSpace(arg)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		switch verb {
		case "progress":
			var pr talon.Progress
			pr, err = talon.ParseProgress(arg)
			if err == nil {
				pr.Updated = e.now()
				err = e.st.SetProgress(ctx, runID, pr)
			}
		case "artifact":
			url, name, _ := strings.Cut(arg, " ")
			_, err = e.addArtifact(ctx, runID, url, strings.TrimSpace(name))
		default:
			err = fmt.Errorf("unknown directive %q (want progress or artifact)", verb)
		}
		if err != nil {
			e.log.Warn("run output directive", "run", runID, "line", line, "err", err)
		}
	}
}
