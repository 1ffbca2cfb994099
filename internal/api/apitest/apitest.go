// Package apitest provides an in-memory api.Backend (both its Reader and
// its Commander) for tests of the HTTP layer and of the CLI. It keeps runs in a map and follows the rules the
// engine follows at the API's edge (who may be cancelled or retried,
// idempotency keys), but it schedules nothing: tests of scheduling use
// the engine with a real store.
package apitest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/view"
)

// Backend is an in-memory api.Backend. Its exported fields may be set
// before it serves; use its methods afterwards.
type Backend struct {
	// Now stamps created runs and artifacts; the default is a fixed time,
	// so outputs are stable.
	Now func() time.Time
	// HealthErr is what Health returns.
	HealthErr error
	// ReloadSummary and ReloadErr are what Reload returns.
	ReloadSummary string
	ReloadErr     error
	// Err, when set, is returned by every other method: an internal error
	// to see how the server hides it.
	Err error

	mu     sync.Mutex
	jobs   []view.JobInfo
	runs   map[int64]*view.RunDetail
	logs   map[int64]string
	nextID int64
	last   Call
	// nextArtifact numbers artifacts across runs, as a store does.
	nextArtifact int64
	paused       map[string]talon.Pause
	audit        []talon.AuditEntry
	agents       []view.AgentInfo
}

// Call records the arguments of the latest call, for tests that check
// what the HTTP layer passed on.
type Call struct {
	Method       string
	RunFilter    view.RunFilter
	PeriodFilter view.PeriodFilter
	Job          string
	Trigger      talon.TriggerRequest
	By           string
	Progress     talon.Progress
	// ArtifactFilter is what Artifacts was asked.
	ArtifactFilter view.ArtifactFilter
}

// Fixed is the default Now of a Backend.
var Fixed = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)

var _ api.Backend = (*Backend)(nil)

// New returns a Backend serving the given jobs and no runs.
func New(jobs ...view.JobInfo) *Backend {
	return &Backend{
		Now:    func() time.Time { return Fixed },
		jobs:   jobs,
		runs:   map[int64]*view.RunDetail{},
		logs:   map[int64]string{},
		paused: map[string]talon.Pause{},
	}
}

// Add stores a run (its ID is assigned when zero) with its decisions and
// events, and returns it.
func (b *Backend) Add(r talon.Run, decisions []talon.Decision, events []talon.Event) talon.Run {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.add(r, decisions, events)
}

func (b *Backend) add(r talon.Run, decisions []talon.Decision, events []talon.Event) talon.Run {
	if r.ID == 0 {
		b.nextID++
		r.ID = b.nextID
	} else if r.ID > b.nextID {
		b.nextID = r.ID
	}
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	if r.Created.IsZero() {
		r.Created = b.Now()
	}
	// The run's history says whose it is and what each event is, as a
	// store's does.
	for i := range events {
		e := &events[i]
		e.RunID, e.Job, e.Period = r.ID, r.Job, r.Period
		if e.Type == "" {
			e.Type = talon.TransitionEvent(e.From, e.To)
		}
	}
	b.runs[r.ID] = &view.RunDetail{Run: r, Decisions: decisions, Events: events}
	return r
}

// SetAgents sets what Agents returns.
func (b *Backend) SetAgents(as []view.AgentInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.agents = as
}

// Agents lists the agents SetAgents set.
func (b *Backend) Agents(ctx context.Context) ([]view.AgentInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Agents"}
	if b.Err != nil {
		return nil, b.Err
	}
	return slices.Clone(b.agents), nil
}

// SetLog sets the text Logs returns for a run.
func (b *Backend) SetLog(id int64, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logs[id] = text
}

// Last returns the arguments of the latest call.
func (b *Backend) Last() Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func notFound(id int64) error { return talon.Errorf(talon.ENOTFOUND, "run %d not found", id) }

// Jobs implements api.Backend.
func (b *Backend) Jobs(ctx context.Context) ([]view.JobInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Jobs"}
	if b.Err != nil {
		return nil, b.Err
	}
	return slices.Clone(b.jobs), nil
}

// Runs implements api.Backend.
func (b *Backend) Runs(ctx context.Context, f view.RunFilter) ([]talon.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Runs", RunFilter: f}
	if b.Err != nil {
		return nil, b.Err
	}
	var out []talon.Run
	for _, d := range b.runs {
		r := d.Run
		if (f.Job != "" && r.Job != f.Job) || (f.Period != "" && r.Period != f.Period) ||
			(len(f.States) > 0 && !slices.Contains(f.States, r.State)) ||
			(f.BeforeID > 0 && r.ID >= f.BeforeID) {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b talon.Run) int { return int(b.ID - a.ID) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Run implements api.Backend.
func (b *Backend) Run(ctx context.Context, id int64) (view.RunDetail, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Run"}
	if b.Err != nil {
		return view.RunDetail{}, b.Err
	}
	d, ok := b.runs[id]
	if !ok {
		return view.RunDetail{}, notFound(id)
	}
	return *d, nil
}

// Periods implements api.Backend: one row per (period, job) that has runs.
func (b *Backend) Periods(ctx context.Context, f view.PeriodFilter) ([]view.PeriodInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Periods", PeriodFilter: f}
	if b.Err != nil {
		return nil, b.Err
	}
	type jobPeriod struct{ job, period string }
	rows := map[jobPeriod]*view.PeriodInfo{}
	for _, d := range b.runs {
		r := d.Run
		if f.Job != "" && r.Job != f.Job || f.Before != "" && r.Period >= f.Before {
			continue
		}
		k := jobPeriod{r.Job, r.Period}
		row := rows[k]
		if row == nil {
			row = &view.PeriodInfo{Period: r.Period, Job: r.Job, Counts: map[talon.State]int{}}
			rows[k] = row
		}
		row.Counts[r.State]++
		if r.ID > row.LatestRun {
			row.LatestRun, row.Latest = r.ID, r.State
		}
	}
	var out []view.PeriodInfo
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b view.PeriodInfo) int {
		if c := strings.Compare(b.Period, a.Period); c != 0 {
			return c
		}
		return strings.Compare(a.Job, b.Job)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Trigger implements api.Backend. Without a period, the run is for the
// daily period of Now.
func (b *Backend) Trigger(ctx context.Context, job string, req talon.TriggerRequest) (talon.Run, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Trigger", Job: job, Trigger: req}
	b.last.Trigger.Audit = nil // the server's, not the caller's
	if b.Err != nil {
		return talon.Run{}, false, b.Err
	}
	i := slices.IndexFunc(b.jobs, func(j view.JobInfo) bool { return j.Name == job })
	if i < 0 {
		return talon.Run{}, false, talon.Errorf(talon.ENOTFOUND, "job %q not found", job)
	}
	if req.Key != "" {
		for _, d := range b.runs {
			if d.Job == job && d.Key == req.Key {
				return d.Run, false, nil
			}
		}
	}
	period := req.Period
	if period == "" {
		period = "daily/" + b.Now().Format("2006-01-02")
	}
	r := b.add(talon.Run{
		Job: job, Period: period, State: talon.StateBlocked, Executor: b.jobs[i].Executor,
		Trigger: talon.TriggerAPI, Key: req.Key, Params: req.Params, Reason: "created by api",
	}, nil, []talon.Event{{RunID: 0, Time: b.Now(), To: talon.StateBlocked, Reason: "created by api"}})
	b.runs[r.ID].Events[0].RunID = r.ID
	if a := req.Audit; a != nil {
		// Recorded with the run, as the stores do (store.CreateRun.Audit).
		e := *a
		e.ID, e.Detail = int64(len(b.audit)+1), fmt.Sprintf("run %d for %s", r.ID, r.Period)
		if e.Time.IsZero() {
			e.Time = b.Now()
		}
		b.audit = append(b.audit, e)
	}
	return r, true, nil
}

// Cancel implements api.Backend.
func (b *Backend) Cancel(ctx context.Context, id int64, by string) (talon.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Cancel", By: by}
	if b.Err != nil {
		return talon.Run{}, b.Err
	}
	d, ok := b.runs[id]
	if !ok {
		return talon.Run{}, notFound(id)
	}
	now := b.Now()
	from := d.State
	switch from {
	case talon.StateBlocked, talon.StateReady:
		d.State = talon.StateSkipped
	case talon.StateRunning:
		d.State = talon.StateFailed
	default:
		return talon.Run{}, talon.Errorf(talon.ECONFLICT, "run %d is %s: only blocked, ready or running runs can be cancelled", id, from)
	}
	d.Reason = "cancelled by " + by
	d.Finished = &now
	d.Events = append(d.Events, talon.Event{RunID: id, Time: now, From: from, To: d.State, Reason: d.Reason})
	return d.Run, nil
}

// Retry implements api.Backend.
func (b *Backend) Retry(ctx context.Context, id int64, by string) (talon.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Retry", By: by}
	if b.Err != nil {
		return talon.Run{}, b.Err
	}
	d, ok := b.runs[id]
	if !ok {
		return talon.Run{}, notFound(id)
	}
	if d.State != talon.StateFailed && d.State != talon.StateSkipped {
		return talon.Run{}, talon.Errorf(talon.ECONFLICT, "run %d is %s: only failed or skipped runs can be retried", id, d.State)
	}
	reason := "retry of run " + strconv.FormatInt(id, 10) + " by " + by
	r := b.add(talon.Run{
		Job: d.Job, Period: d.Period, State: talon.StateBlocked, Executor: d.Executor,
		Trigger: talon.TriggerRetry, Attempt: d.Attempt + 1, RetryOf: id, Params: d.Params, Reason: reason,
	}, nil, nil)
	b.runs[r.ID].Events = []talon.Event{{RunID: r.ID, Time: b.Now(), To: talon.StateBlocked, Reason: reason}}
	return r, nil
}

// Logs implements api.Backend.
func (b *Backend) Logs(ctx context.Context, id int64) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Logs"}
	if b.Err != nil {
		return nil, b.Err
	}
	if _, ok := b.runs[id]; !ok {
		return nil, notFound(id)
	}
	return io.NopCloser(strings.NewReader(b.logs[id])), nil
}

// Reload implements api.Backend.
func (b *Backend) Reload(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Reload"}
	return b.ReloadSummary, b.ReloadErr
}

// SetProgress implements api.Backend.
func (b *Backend) SetProgress(ctx context.Context, id int64, p talon.Progress) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "SetProgress", Progress: p}
	if b.Err != nil {
		return b.Err
	}
	d, ok := b.runs[id]
	if !ok {
		return notFound(id)
	}
	if d.State.Terminal() {
		return talon.Errorf(talon.ECONFLICT, "run %d is %s: a finished run takes no more progress", id, d.State)
	}
	p.Updated = b.Now()
	d.Progress = &p
	return nil
}

// AddArtifact implements api.Backend.
func (b *Backend) AddArtifact(ctx context.Context, id int64, url, name string) (talon.Artifact, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "AddArtifact"}
	if b.Err != nil {
		return talon.Artifact{}, b.Err
	}
	d, ok := b.runs[id]
	if !ok {
		return talon.Artifact{}, notFound(id)
	}
	if d.State.Terminal() {
		return talon.Artifact{}, talon.Errorf(talon.ECONFLICT, "run %d is %s: a finished run takes no more artifacts", id, d.State)
	}
	b.nextArtifact++
	a := talon.Artifact{ID: b.nextArtifact, RunID: id, Job: d.Job, Period: d.Period, URL: url, Name: name, Created: b.Now()}
	d.Artifacts = append(d.Artifacts, a)
	return a, nil
}

// Artifacts implements api.Backend.
func (b *Backend) Artifacts(ctx context.Context, f view.ArtifactFilter) ([]talon.Artifact, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Artifacts", ArtifactFilter: f}
	if b.Err != nil {
		return nil, b.Err
	}
	var out []talon.Artifact
	for _, d := range b.runs {
		for _, a := range d.Artifacts {
			if (f.Job == "" || a.Job == f.Job) && (f.Period == "" || a.Period == f.Period) &&
				(f.BeforeID == 0 || a.ID < f.BeforeID) {
				out = append(out, a)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Health implements api.Backend.
func (b *Backend) Health(ctx context.Context) error { return b.HealthErr }

// Resources returns an empty tree.
func (b *Backend) Resources(ctx context.Context) (view.ResourcesView, error) {
	return view.ResourcesView{}, nil
}

// PeriodRange implements api.Backend for daily keys only.
func (b *Backend) PeriodRange(ctx context.Context, job, from, to string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Err != nil {
		return nil, b.Err
	}
	if !slices.ContainsFunc(b.jobs, func(j view.JobInfo) bool { return j.Name == job }) {
		return nil, talon.Errorf(talon.ENOTFOUND, "job %q not found", job)
	}
	f, err1 := time.Parse("daily/2006-01-02", from)
	t, err2 := time.Parse("daily/2006-01-02", to)
	if err1 != nil || err2 != nil {
		return nil, talon.Errorf(talon.EINVALID, "want daily/YYYY-MM-DD keys")
	}
	var out []string
	for d := f; !d.After(t); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format("daily/2006-01-02"))
	}
	return out, nil
}

// Mark implements api.Backend with the engine's rules: succeeded or
// failed, with a reason, not of a running run nor to the state it is in.
func (b *Backend) Mark(ctx context.Context, id int64, state talon.State, reason, by string) (talon.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Mark", By: by}
	if b.Err != nil {
		return talon.Run{}, b.Err
	}
	d, ok := b.runs[id]
	if !ok {
		return talon.Run{}, notFound(id)
	}
	if strings.TrimSpace(reason) == "" {
		return talon.Run{}, talon.Errorf(talon.EINVALID, "mark run %d: say why (a reason is required)", id)
	}
	if !talon.CanMark(d.State, state) {
		return talon.Run{}, talon.Errorf(talon.ECONFLICT, "run %d is %s and cannot be marked %s", id, d.State, state)
	}
	now := b.Now()
	from := d.State
	d.State, d.Reason = state, "marked "+string(state)+" by "+by+": "+reason
	if d.Finished == nil {
		d.Finished = &now
	}
	d.Events = append(d.Events, talon.Event{RunID: id, Time: now, From: from, To: state, Reason: d.Reason})
	return d.Run, nil
}

// Pause implements api.Backend.
func (b *Backend) Pause(ctx context.Context, job, by, reason string) (talon.Pause, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Pause", Job: job, By: by}
	if b.Err != nil {
		return talon.Pause{}, false, b.Err
	}
	if !slices.ContainsFunc(b.jobs, func(j view.JobInfo) bool { return j.Name == job }) {
		return talon.Pause{}, false, talon.Errorf(talon.ENOTFOUND, "job %q not found", job)
	}
	if p, ok := b.paused[job]; ok {
		return p, false, nil
	}
	p := talon.Pause{Job: job, By: by, Reason: reason, Since: b.Now()}
	b.paused[job] = p
	return p, true, nil
}

// Resume implements api.Backend.
func (b *Backend) Resume(ctx context.Context, job, by string) (talon.Pause, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Resume", Job: job, By: by}
	if b.Err != nil {
		return talon.Pause{}, b.Err
	}
	p, ok := b.paused[job]
	if !ok {
		return talon.Pause{}, talon.Errorf(talon.ECONFLICT, "job %s is not paused", job)
	}
	delete(b.paused, job)
	return p, nil
}

// RecordAudit implements api.Backend, keeping entries in memory.
func (b *Backend) RecordAudit(ctx context.Context, a talon.AuditEntry) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	a.ID = int64(len(b.audit) + 1)
	if a.Time.IsZero() {
		a.Time = b.Now()
	}
	b.audit = append(b.audit, a)
	return nil
}

// Audit implements api.Backend: newest first, filtered like the stores.
func (b *Backend) Audit(ctx context.Context, f view.AuditFilter) ([]talon.AuditEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = Call{Method: "Audit"}
	if b.Err != nil {
		return nil, b.Err
	}
	var out []talon.AuditEntry
	for i := len(b.audit) - 1; i >= 0; i-- {
		a := b.audit[i]
		if (f.Actor != "" && a.Actor != f.Actor) || (!f.Since.IsZero() && a.Time.Before(f.Since)) || (f.BeforeID > 0 && a.ID >= f.BeforeID) {
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		out = append(out, a)
	}
	return out, nil
}
