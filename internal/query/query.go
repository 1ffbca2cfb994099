// Package query is the read side of Talon: a read-only service over the
// state store that answers every question the API (and the dashboard)
// asks — the jobs with their pauses and next fires, runs, one run with
// its decisions, history and resources, periods and period ranges, the
// resource tree in use, artifacts, the audit and run logs — as view
// types. It writes nothing: the store it is given is narrowed to reads.
//
// What only the running scheduler knows (the schedule in force, when a
// trigger fires next, why a trigger stopped, where a run's log is) it
// asks through Scheduler, which the engine implements; the engine, for
// its part, keeps stepping, triggering, cancelling and the other
// commands, and returns no view.
package query

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/view"
)

// Scheduler is what the service needs of the scheduler holding the
// schedule; *engine.Engine implements it.
type Scheduler interface {
	// Schedule is the schedule in force (it changes on reload).
	Schedule() *schedule.Schedule
	// NextFire is the next fire of j's time triggers after after, or
	// zero when none fires again.
	NextFire(j *schedule.Job, after time.Time) time.Time
	// TriggerErrors says why j's triggers stopped firing, if any did.
	TriggerErrors(job string) []string
	// LogPath is where this scheduler writes run r's log file: the one
	// rule for it, so that a file is found by its run, never by a path
	// from a request. (Logs are read from the state store; the file is
	// the fallback for what the store holds nothing of.)
	LogPath(r talon.Run) string
}

// reader is the part of the store the service uses: reads only.
type reader interface {
	GetRun(ctx context.Context, id int64) (talon.Run, error)
	ListRuns(ctx context.Context, f store.RunFilter) ([]talon.Run, error)
	Decisions(ctx context.Context, runID int64) ([]talon.Decision, error)
	Events(ctx context.Context, runID int64) ([]talon.Event, error)
	ListPeriods(ctx context.Context, f store.PeriodFilter) ([]store.PeriodRow, error)
	ListArtifacts(ctx context.Context, f store.ArtifactFilter) ([]talon.Artifact, error)
	Holds(ctx context.Context, runIDs []int64) ([]resource.Hold, error)
	Held(ctx context.Context, runID int64) ([]resource.Hold, error)
	Waiters(ctx context.Context) ([]resource.Waiter, error)
	PausedJobs(ctx context.Context) ([]talon.Pause, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]talon.AuditEntry, error)
	ReadLog(ctx context.Context, runID, off int64, limit int) ([]byte, error)
}

var _ reader = store.Store(nil)

// Service answers reads. Its errors are *talon.Error (invalid,
// not_found, unavailable) when the user can act on them.
type Service struct {
	st    reader
	sched Scheduler
	now   func() time.Time
}

// New returns a service reading st, with what only the scheduler knows
// from sched. now is the clock of next fires and of the period horizon;
// nil means time.Now.
func New(st store.Store, sched Scheduler, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, sched: sched, now: now}
}

// Jobs lists the jobs of the schedule in force, with their next fire,
// their stopped triggers and their pauses.
func (s *Service) Jobs(ctx context.Context) ([]view.JobInfo, error) {
	sch := s.sched.Schedule()
	ps, err := s.st.PausedJobs(ctx)
	if err != nil {
		return nil, store.UserError(err, "paused jobs")
	}
	paused := make(map[string]talon.Pause, len(ps))
	for _, p := range ps {
		paused[p.Job] = p
	}
	now := s.now()
	out := make([]view.JobInfo, 0, len(sch.Jobs))
	for _, j := range sch.Jobs {
		out = append(out, s.jobInfo(j, paused, now))
	}
	return out, nil
}

// jobInfo describes j with its next fire after now, its stopped triggers
// and its pause, if paused has one for it.
func (s *Service) jobInfo(j *schedule.Job, paused map[string]talon.Pause, now time.Time) view.JobInfo {
	ji := view.JobInfo{
		Name: j.Name, Description: j.Description, Period: string(j.Period.Type), Calendar: j.Period.Calendar,
		Timezone: j.Timezone, Environment: j.Environment, Group: j.Group, Executor: j.Executor,
		Triggers: []string{}, Constraints: []string{},
	}
	for _, t := range j.Triggers {
		switch {
		case t.Schedule != "":
			ji.Triggers = append(ji.Triggers, "schedule: "+t.Schedule)
		case t.After != "":
			ji.Triggers = append(ji.Triggers, "after: "+t.After)
		}
	}
	if next := s.sched.NextFire(j, now); !next.IsZero() {
		ji.Next = next.In(j.Location).Format(time.RFC3339)
	}
	for _, c := range j.Constraints {
		ji.Constraints = append(ji.Constraints, c.Kind)
	}
	ji.Errors = s.sched.TriggerErrors(j.Name)
	if pause, ok := paused[j.Name]; ok {
		ji.Paused = &pause
	}
	return ji
}

// Runs lists runs with their artifacts, newest first.
func (s *Service) Runs(ctx context.Context, f view.RunFilter) ([]talon.Run, error) {
	if err := checkKey(f.Period); err != nil {
		return nil, err
	}
	runs, err := s.st.ListRuns(ctx, store.RunFilter{
		Job: f.Job, Period: f.Period, States: f.States, BeforeID: f.BeforeID, Limit: f.Limit,
		WithArtifacts: true,
	})
	return runs, store.UserError(err, "runs")
}

// checkKey refuses a filter's period that is no period key, so that a
// typo is an error rather than an empty list.
func checkKey(key string) error {
	if key == "" {
		return nil
	}
	if _, err := calendar.ParseKey(key, nil); err != nil {
		return talon.Errorf(talon.EINVALID, "%v", err)
	}
	return nil
}

// Run returns a run with its decisions, history and resources.
func (s *Service) Run(ctx context.Context, id int64) (view.RunDetail, error) {
	what := fmt.Sprintf("run %d", id)
	r, err := s.st.GetRun(ctx, id)
	if err != nil {
		return view.RunDetail{}, store.UserError(err, what)
	}
	ds, err := s.st.Decisions(ctx, id)
	if err != nil {
		return view.RunDetail{}, store.UserError(err, what)
	}
	evs, err := s.st.Events(ctx, id)
	if err != nil {
		return view.RunDetail{}, store.UserError(err, what)
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
	res, err := s.runResources(ctx, r)
	if err != nil {
		return view.RunDetail{}, store.UserError(err, what)
	}
	return view.RunDetail{Run: r, Decisions: ds, Events: evs, Resources: res}, nil
}

// Periods lists the periods that have runs, newest first, one row per
// (period, job).
func (s *Service) Periods(ctx context.Context, f view.PeriodFilter) ([]view.PeriodInfo, error) {
	rows, err := s.st.ListPeriods(ctx, store.PeriodFilter{Job: f.Job, Before: f.Before, Limit: f.Limit})
	if err != nil {
		return nil, store.UserError(err, "periods")
	}
	out := make([]view.PeriodInfo, len(rows))
	for i, p := range rows {
		counts := map[talon.State]int(p.Counts)
		if counts == nil {
			counts = map[talon.State]int{}
		}
		out[i] = view.PeriodInfo{Period: p.Period, Job: p.Job, Counts: counts, LatestRun: p.LatestRun, Latest: p.Latest}
	}
	return out, nil
}

// MaxPeriodRange bounds one period range (a backfill of 270 years of
// days).
const MaxPeriodRange = 100000

// PeriodRange lists job's period keys from one key to another, inclusive,
// following the job's zone and calendar (for backfills).
func (s *Service) PeriodRange(ctx context.Context, job, from, to string) ([]string, error) {
	sch := s.sched.Schedule()
	j := sch.ByName[job]
	if j == nil {
		return nil, sch.JobNotFound(job)
	}
	if j.Period.Type == talon.Oneshot {
		return nil, talon.Errorf(talon.EINVALID, "job %s has oneshot periods, which have no range; trigger each with --period oneshot/NAME", job)
	}
	now := s.now()
	bounds := make([]talon.Period, 2)
	for i, k := range []string{from, to} {
		per, err := calendar.ParseKey(k, j.Location)
		if err != nil {
			return nil, talon.Errorf(talon.EINVALID, "%v", err)
		}
		if per.Type != j.Period.Type {
			return nil, talon.Errorf(talon.EINVALID, "period %q is %s but job %s runs for %s periods", k, per.Type, job, j.Period.Type)
		}
		if err := calendar.InHorizon(k, per, now); err != nil {
			return nil, err
		}
		// Start from the period containing the key's start, so that with
		// a business calendar a holiday key snaps to its business day.
		if per, err = j.Periods().At(per.Start, talon.PeriodSame); err != nil {
			return nil, talon.Errorf(talon.EINVALID, "period %q: %v", k, err)
		}
		bounds[i] = per
	}
	if bounds[1].Start.Before(bounds[0].Start) {
		return nil, talon.Errorf(talon.EINVALID, "period range %s to %s is backwards; put the earlier period first", from, to)
	}
	var keys []string
	for per := bounds[0]; !per.Start.After(bounds[1].Start); {
		if len(keys) == MaxPeriodRange {
			return nil, talon.Errorf(talon.EINVALID, "period range %s to %s has more than %d periods; split it", from, to, MaxPeriodRange)
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

// Artifacts lists artifacts, newest first.
func (s *Service) Artifacts(ctx context.Context, f view.ArtifactFilter) ([]talon.Artifact, error) {
	if err := checkKey(f.Period); err != nil {
		return nil, err
	}
	as, err := s.st.ListArtifacts(ctx, store.ArtifactFilter{Job: f.Job, Period: f.Period, BeforeID: f.BeforeID, Limit: f.Limit})
	return as, store.UserError(err, "artifacts")
}

// Audit lists audit entries, newest first.
func (s *Service) Audit(ctx context.Context, f view.AuditFilter) ([]talon.AuditEntry, error) {
	out, err := s.st.ListAudit(ctx, store.AuditFilter{Since: f.Since, Actor: f.Actor, BeforeID: f.BeforeID, Limit: f.Limit})
	return out, store.UserError(err, "audit")
}

// Logs opens run id's log (stdout and stderr) as the state store keeps
// it, so every scheduler sharing the store shows it, whoever ran the run
// and wherever. The reader returns io.EOF at the end of what is stored
// so far, and reads on from there when asked again: a follower reads it
// again as the run writes. A log the store holds nothing of is read from
// the file under this scheduler's log directory, if there is one (a run
// from before the log store, or output that has not reached it yet: a
// batch is stored within a fraction of a second). A run that started but
// wrote nothing has an empty log; one that never started has none
// (not_found).
func (s *Service) Logs(ctx context.Context, id int64) (io.ReadCloser, error) {
	r, err := s.st.GetRun(ctx, id)
	if err != nil {
		return nil, store.UserError(err, fmt.Sprintf("run %d", id))
	}
	first, err := s.st.ReadLog(ctx, id, 0, logPage)
	if err != nil {
		return nil, store.UserError(err, fmt.Sprintf("log of run %d", id))
	}
	if len(first) == 0 {
		if f, err := os.Open(s.sched.LogPath(r)); err == nil {
			if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
				return f, nil
			}
			f.Close()
		}
		if r.Started == nil {
			return nil, talon.Errorf(talon.ENOTFOUND, "run %d has no log: it never started (%s)", id, r.State)
		}
	}
	return &storedLog{ctx: ctx, st: s.st, run: id, buf: first, off: int64(len(first))}, nil
}

// logPage is how much of a log one read asks the store for.
const logPage = 64 << 10

// storedLog reads a run's log from the state store, a page at a time.
// It holds the request's context: it lives as long as the request.
type storedLog struct {
	ctx context.Context
	st  reader
	run int64
	buf []byte // read from the store, not yet returned
	off int64  // the offset after buf
}

// Read returns what the store holds past what was read, or io.EOF when
// it holds no more yet. Store errors are *talon.Error (unavailable).
func (l *storedLog) Read(p []byte) (int, error) {
	if len(l.buf) == 0 {
		b, err := l.st.ReadLog(l.ctx, l.run, l.off, logPage)
		if err != nil {
			return 0, store.UserError(err, fmt.Sprintf("log of run %d", l.run))
		}
		if len(b) == 0 {
			return 0, io.EOF
		}
		l.buf, l.off = b, l.off+int64(len(b))
	}
	n := copy(p, l.buf)
	l.buf = l.buf[n:]
	return n, nil
}

func (l *storedLog) Close() error { return nil }

// Resources returns the schedule's resource tree with what each node has
// used now (by whom), the queued runs it could serve, and for a
// consumable node the units used in each period. Nodes a reload removed
// while runs held them are listed too, undeclared.
func (s *Service) Resources(ctx context.Context) (view.ResourcesView, error) {
	tree := s.sched.Schedule().Tree()
	holds, err := s.st.Holds(ctx, nil)
	if err != nil {
		return view.ResourcesView{}, store.UserError(err, "resources")
	}
	ws, err := s.st.Waiters(ctx)
	if err != nil {
		return view.ResourcesView{}, store.UserError(err, "resources")
	}
	led := resource.NewLedger(holds, nil, s.now())
	waiting := map[string][]int64{}
	for _, w := range ws {
		seen := map[string]bool{}
		for _, r := range w.Requests {
			for _, n := range r.Candidates(tree) {
				if !seen[n.Path] {
					seen[n.Path] = true
					waiting[n.Path] = append(waiting[n.Path], w.RunID)
				}
			}
		}
	}
	periods := map[string]map[string]int{}
	var undeclared []string
	for _, h := range holds {
		if _, ok := tree.Node(h.Path); !ok && !slices.Contains(undeclared, h.Path) {
			undeclared = append(undeclared, h.Path)
		}
		if h.Period != "" {
			if periods[h.Path] == nil {
				periods[h.Path] = map[string]int{}
			}
			periods[h.Path][h.Period] += h.Units
		}
	}
	v := view.ResourcesView{Resources: []view.ResourceInfo{}, Waiters: ws}
	if v.Waiters == nil {
		v.Waiters = []resource.Waiter{}
	}
	info := func(n *resource.Node, declared bool) view.ResourceInfo {
		hs := led.Counted(n)
		if hs == nil {
			hs = []resource.Hold{}
		}
		w := waiting[n.Path]
		if w == nil {
			w = []int64{}
		}
		return view.ResourceInfo{Node: *n, Declared: declared, Used: led.Used(n), Holders: hs, Waiting: w, Periods: periods[n.Path]}
	}
	for _, n := range tree.Nodes() {
		v.Resources = append(v.Resources, info(n, true))
	}
	slices.Sort(undeclared)
	for _, path := range undeclared {
		v.Resources = append(v.Resources, info(&resource.Node{Path: path}, false))
	}
	return v, nil
}

// runResources is what run r holds (or, once finished, held) and wants,
// or nil when its job asks for nothing and it holds nothing.
func (s *Service) runResources(ctx context.Context, r talon.Run) (*view.RunResources, error) {
	holds := func(ctx context.Context, id int64) ([]resource.Hold, error) { return s.st.Holds(ctx, []int64{id}) }
	if r.State.Terminal() {
		// Its holds were released when it ended; its record keeps them.
		holds = s.st.Held
	}
	held, err := holds(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	j := s.sched.Schedule().ByName[r.Job]
	if len(held) == 0 && (j == nil || len(j.Requests) == 0) {
		return nil, nil
	}
	out := &view.RunResources{Held: held, Wants: []resource.Request{}}
	if out.Held == nil {
		out.Held = []resource.Hold{}
	}
	if j != nil {
		if wants := j.Wants(r.Environment); wants != nil {
			out.Wants = wants
		}
	}
	ws, err := s.st.Waiters(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if w.RunID == r.ID {
			out.Waiting = w.Reason
		}
	}
	return out, nil
}
