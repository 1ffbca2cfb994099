package query

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/constraint"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/trigger"
	"github.com/talonhq/talon/internal/view"
)

// The dashboard's reads (internal/web): the grid, a job's page, a
// period's timeline. They use the store's existing reads: ListPeriods
// (counts and latest run of each job's period), ListRuns and Decisions.

// Grid returns the jobs of one period type by their recent periods, each
// cell with the period's latest run.
func (s *Service) Grid(ctx context.Context, f view.GridFilter) (view.Grid, error) {
	sch := s.sched.Schedule()
	now := s.now()
	g := view.Grid{}
	byType := map[talon.PeriodType]int{}
	for _, j := range sch.Jobs {
		byType[j.Period.Type]++
		if !slices.Contains(g.Environments, j.Environment) {
			g.Environments = append(g.Environments, j.Environment)
		}
	}
	slices.Sort(g.Environments)
	for _, t := range talon.PeriodTypes {
		if byType[t] > 0 {
			g.Types = append(g.Types, view.GridType{Type: t, Jobs: byType[t]})
		}
	}
	g.Type = f.Type
	if g.Type == "" {
		g.Type = talon.Daily
		for _, t := range g.Types {
			if t.Jobs > byType[g.Type] {
				g.Type = t.Type
			}
		}
	}
	if !slices.Contains(talon.PeriodTypes, g.Type) {
		return g, talon.Errorf(talon.EINVALID, "period type %q: want hourly, daily, weekly, monthly, quarterly, yearly or oneshot", f.Type)
	}
	count := f.Count
	if count == 0 {
		count = view.DefaultColumns[g.Type]
	}
	if count < 1 || count > view.MaxColumns {
		return g, talon.Errorf(talon.EINVALID, "periods %d: want 1 to %d", count, view.MaxColumns)
	}
	g.Total = byType[g.Type]

	// The jobs shown, and the paused ones.
	ps, err := s.st.PausedJobs(ctx)
	if err != nil {
		return g, store.UserError(err, "paused jobs")
	}
	paused := map[string]bool{}
	for _, p := range ps {
		paused[p.Job] = true
	}
	needle := strings.ToLower(f.Job)
	var jobs []*schedule.Job
	for _, j := range sch.Jobs {
		if j.Period.Type != g.Type {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(j.Name), needle) && !strings.Contains(strings.ToLower(j.Group), needle) {
			continue
		}
		if f.Environment != "" && j.Environment != strings.TrimPrefix(f.Environment, "-") {
			continue
		}
		jobs = append(jobs, j)
	}

	// The columns: the last count periods up to End (or the current one,
	// the latest of the jobs' zones), or for oneshot periods the names
	// that have runs.
	envs := map[string]bool{}
	for _, j := range jobs {
		envs[j.Environment] = true
	}
	if g.Type == talon.Oneshot {
		seen := map[string]bool{}
		for env := range envs {
			rows, err := s.st.ListPeriods(ctx, store.PeriodFilter{Before: envPrefix(env) + "oneshot0", Limit: count})
			if err != nil {
				return g, store.UserError(err, "periods")
			}
			for _, r := range rows {
				k := stripEnv(r.Period)
				if strings.HasPrefix(k, "oneshot/") && !seen[k] {
					seen[k] = true
					g.Columns = append(g.Columns, k)
				}
			}
		}
		slices.Sort(g.Columns)
		if len(g.Columns) > count {
			g.Columns = g.Columns[len(g.Columns)-count:]
		}
	} else {
		g.Current = currentKey(g.Type, jobs, now)
		end := g.Current
		if f.End != "" {
			end = f.End
		}
		last, err := calendar.ParseKey(end, time.UTC)
		if err != nil || last.Environment != "" || last.Type != g.Type {
			return g, talon.Errorf(talon.EINVALID, "end %q: want a %s period key without environment, like %s", end, g.Type, g.Current)
		}
		g.Columns = make([]string, count)
		per := last
		for i := count - 1; i >= 0; i-- {
			g.Columns[i] = per.Key()
			if per, err = calendar.Shift(per, -1, nil); err != nil {
				return g, talon.Errorf(talon.EINVALID, "period before %s: %v", per.Key(), err)
			}
		}
	}
	col := make(map[string]int, len(g.Columns))
	for i, k := range g.Columns {
		col[k] = i
	}

	// The cells' runs: one read per environment, of the periods up to
	// the last column (ListPeriods sorts by key, so a type's keys come
	// together).
	shown := make(map[string][]view.GridCell, len(jobs))
	for _, j := range jobs {
		shown[j.Name] = nil
	}
	live := false
	if len(g.Columns) > 0 && len(jobs) > 0 {
		before := g.Columns[len(g.Columns)-1]
		if g.Type != talon.Oneshot {
			p, _ := calendar.ParseKey(before, time.UTC)
			next, err := calendar.Shift(p, 1, nil)
			if err != nil {
				return g, talon.Errorf(talon.EINVALID, "period after %s: %v", before, err)
			}
			before = next.Key()
		} else {
			before = "oneshot0"
		}
		for env := range envs {
			rows, err := s.st.ListPeriods(ctx, store.PeriodFilter{Before: envPrefix(env) + before, Limit: len(g.Columns)})
			if err != nil {
				return g, store.UserError(err, "periods")
			}
			for _, r := range rows {
				if envOf(r.Period) != env {
					continue
				}
				i, ok := col[stripEnv(r.Period)]
				if !ok {
					continue
				}
				n := 0
				for _, c := range r.Counts {
					n += c
				}
				row, ok := shown[r.Job]
				if !ok {
					continue // a job the grid does not show
				}
				if row == nil {
					row = make([]view.GridCell, len(g.Columns))
					shown[r.Job] = row
				}
				row[i] = view.GridCell{Period: r.Period, State: r.Latest, Run: r.LatestRun, Runs: n, Counts: r.Counts}
				if !r.Latest.Terminal() {
					live = true
				}
			}
		}
	}
	// Live runs are few (only they are indexed by state): their attempt
	// and progress come from them.
	liveRuns := map[int64]talon.Run{}
	if live {
		runs, err := s.st.ListRuns(ctx, store.RunFilter{States: []talon.State{talon.StateBlocked, talon.StateReady, talon.StateRunning}, Limit: 10000})
		if err != nil {
			return g, store.UserError(err, "runs")
		}
		for _, r := range runs {
			liveRuns[r.ID] = r
		}
	}

	// Which columns are periods of a job with a business calendar: the
	// same for every job of its zone and calendar.
	inPeriod := map[string][]bool{}
	notPeriods := func(j *schedule.Job) []bool {
		if j.Calendar == nil || g.Type == talon.Oneshot {
			return nil
		}
		k := j.Timezone + "\x00" + j.Period.Calendar
		if v, ok := inPeriod[k]; ok {
			return v
		}
		v := make([]bool, len(g.Columns))
		ps := j.Periods()
		ps.Environment = ""
		for i, key := range g.Columns {
			p, err := calendar.ParseKey(key, j.Location)
			if err != nil {
				continue
			}
			at, err := ps.At(p.Start, talon.PeriodSame)
			v[i] = err != nil || at.Key() != key
		}
		inPeriod[k] = v
		return v
	}

	groups := map[[2]string]*view.GridGroup{}
	for _, j := range jobs {
		row := view.GridRow{Job: j.Name, Description: j.Description, Paused: paused[j.Name], Cells: shown[j.Name]}
		if row.Cells == nil {
			row.Cells = make([]view.GridCell, len(g.Columns))
		}
		not := notPeriods(j)
		keep := len(f.States) == 0
		for i, key := range g.Columns {
			c := row.Cells[i]
			ok := c.Run != 0
			if !ok {
				c.Period = envPrefix(j.Environment) + key
			}
			if not != nil && not[i] && !ok {
				c.NotPeriod = true
			}
			if r, ok := liveRuns[c.Run]; ok && c.State == r.State {
				c.Attempt = r.Attempt
				if p := r.ShownProgress(); p != nil && r.State == talon.StateRunning {
					c.Percent = p.Percent
				}
			}
			if !keep && c.State != "" && slices.Contains(f.States, c.State) {
				keep = true
			}
			row.Cells[i] = c
		}
		if !keep {
			continue
		}
		gk := [2]string{j.Environment, j.Group}
		gr := groups[gk]
		if gr == nil {
			gr = &view.GridGroup{Environment: j.Environment, Group: j.Group}
			groups[gk] = gr
		}
		gr.Rows = append(gr.Rows, row)
		g.Jobs++
	}
	for _, gr := range groups {
		slices.SortFunc(gr.Rows, func(a, b view.GridRow) int { return cmp.Compare(a.Job, b.Job) })
		g.Groups = append(g.Groups, *gr)
	}
	slices.SortFunc(g.Groups, func(a, b view.GridGroup) int {
		return cmp.Or(cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.Group, b.Group))
	})
	return g, nil
}

// currentKey is the key of the current period of type t: the latest of
// the jobs' zones (a zone east of UTC is in tomorrow first).
func currentKey(t talon.PeriodType, jobs []*schedule.Job, now time.Time) string {
	best := ""
	seen := map[*time.Location]bool{}
	for _, j := range jobs {
		if seen[j.Location] {
			continue
		}
		seen[j.Location] = true
		p, err := calendar.Periods{Type: t, Location: j.Location}.At(now, talon.PeriodSame)
		if err == nil && p.Key() > best {
			best = p.Key()
		}
	}
	if best == "" {
		if p, err := (calendar.Periods{Type: t, Location: time.UTC}).At(now, talon.PeriodSame); err == nil {
			best = p.Key()
		}
	}
	return best
}

func envPrefix(env string) string {
	if env == "" {
		return ""
	}
	return env + ":"
}

// envOf and stripEnv split a period key's environment ("prod:") off.
func envOf(key string) string {
	env, _, ok := strings.Cut(key, ":")
	if !ok || strings.Contains(env, "/") {
		return ""
	}
	return env
}

func stripEnv(key string) string {
	if env := envOf(key); env != "" {
		return key[len(env)+1:]
	}
	return key
}

// upstreams is what a compiled after constraint says it waits for.
type upstreams interface{ Upstreams() []string }

// deps returns each job's upstreams: the jobs its after constraints wait
// for and its completion triggers follow.
func deps(sch *schedule.Schedule) map[string][]string {
	out := map[string][]string{}
	for _, j := range sch.Jobs {
		var ups []string
		for _, c := range j.Checks {
			if u, ok := c.(upstreams); ok {
				ups = append(ups, u.Upstreams()...)
			}
		}
		for _, t := range j.Triggers {
			if t.After != "" {
				ups = append(ups, t.After)
			}
		}
		slices.Sort(ups)
		out[j.Name] = slices.Compact(ups)
	}
	return out
}

// JobDetail returns a job with its next fires (at most fires of them),
// constraints, dependencies and latest runs (at most history).
func (s *Service) JobDetail(ctx context.Context, name string, fires, history int) (view.JobDetail, error) {
	sch := s.sched.Schedule()
	j := sch.ByName[name]
	if j == nil {
		return view.JobDetail{}, sch.JobNotFound(name)
	}
	ps, err := s.st.PausedJobs(ctx)
	if err != nil {
		return view.JobDetail{}, store.UserError(err, "paused jobs")
	}
	paused := map[string]talon.Pause{}
	for _, p := range ps {
		if p.Job == name {
			paused[name] = p
		}
	}
	now := s.now()
	d := view.JobDetail{JobInfo: s.jobInfo(j, paused, now)}
	for i, t := range j.Triggers {
		if t.Schedule == "" || i >= len(j.Times) || j.Times[i] == nil {
			continue
		}
		at := now
		for n := 0; n < fires; n++ {
			f, err := trigger.NextFire(j.Times[i], at)
			if err != nil || f.At.IsZero() {
				break
			}
			key := "?"
			if per, err := f.Period(j.Periods(), t.Period); err == nil {
				key = per.Key()
			}
			d.Fires = append(d.Fires, view.Fire{Time: f.At, Period: key, Trigger: t.Schedule})
			at = f.At
		}
	}
	slices.SortStableFunc(d.Fires, func(a, b view.Fire) int { return a.Time.Compare(b.Time) })
	if len(d.Fires) > fires {
		d.Fires = d.Fires[:fires]
	}
	for _, c := range j.Constraints {
		v, err := json.Marshal(c.Value)
		if err != nil {
			v = []byte(fmt.Sprint(c.Value))
		}
		d.Constraints = append(d.Constraints, view.ConstraintInfo{Kind: c.Kind, Value: string(v)})
	}
	dep := deps(sch)
	d.Upstreams = dep[name]
	for _, o := range sch.Jobs {
		if slices.Contains(dep[o.Name], name) {
			d.Downstreams = append(d.Downstreams, o.Name)
		}
	}
	d.History, err = s.st.ListRuns(ctx, store.RunFilter{Job: name, Limit: history})
	if err != nil {
		return d, store.UserError(err, "runs of "+name)
	}
	return d, nil
}

// MaxTimelineRuns bounds the runs of one timeline.
const MaxTimelineRuns = 2000

// Timeline returns every run of one period (of every job; of every
// environment when the key names none), with the dependencies between
// their jobs, the critical path and start_by deadlines.
func (s *Service) Timeline(ctx context.Context, key string) (view.Timeline, error) {
	per, err := calendar.ParseKey(key, time.UTC)
	if err != nil {
		return view.Timeline{}, talon.Errorf(talon.EINVALID, "%v", err)
	}
	sch := s.sched.Schedule()
	tl := view.Timeline{Period: key}
	// A key without environment stands for that period in every
	// environment the schedule has (the grid's columns link so); one with
	// an environment for that environment's.
	keys := []string{key}
	if per.Environment == "" {
		seen := map[string]bool{"": true}
		for _, j := range sch.Jobs {
			if !seen[j.Environment] {
				seen[j.Environment] = true
				keys = append(keys, envPrefix(j.Environment)+key)
			}
		}
	}
	var runs []talon.Run
	for _, k := range keys {
		rs, err := s.st.ListRuns(ctx, store.RunFilter{Period: k, Limit: MaxTimelineRuns - len(runs)})
		if err != nil {
			return tl, store.UserError(err, "runs of "+k)
		}
		runs = append(runs, rs...)
		if len(runs) >= MaxTimelineRuns {
			break
		}
	}
	slices.SortFunc(runs, func(a, b talon.Run) int { return cmp.Compare(a.ID, b.ID) }) // oldest first
	now := s.now()
	if per.Type != talon.Oneshot {
		tl.Start, tl.End = per.Start, per.End
	}
	deadlines := map[string]time.Time{}
	for _, r := range runs {
		tr := view.TimelineRun{Run: r}
		j := sch.ByName[r.Job]
		if j != nil && per.Type != talon.Oneshot {
			if d, ok := deadlines[r.Job]; ok {
				tr.Deadline = d
			} else {
				tr.Deadline = startBy(ctx, j, r.Period)
				deadlines[r.Job] = tr.Deadline
			}
		}
		if !tr.Deadline.IsZero() {
			switch {
			case r.Started != nil:
				tr.Missed = r.Started.After(tr.Deadline)
			default:
				// It never started: missed once the deadline passed,
				// unless it was marked or skipped before it.
				end := now
				if r.Finished != nil {
					end = *r.Finished
				}
				tr.Missed = end.After(tr.Deadline) && r.State != talon.StateSucceeded
			}
		}
		tl.Runs = append(tl.Runs, tr)
	}
	// Dependencies between the jobs that have runs here.
	here := map[string]bool{}
	for _, r := range runs {
		here[r.Job] = true
	}
	dep := deps(sch)
	for job := range here {
		for _, up := range dep[job] {
			if here[up] {
				tl.Edges = append(tl.Edges, view.Edge{From: up, To: job})
			}
		}
	}
	slices.SortFunc(tl.Edges, func(a, b view.Edge) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	tl.Critical = criticalPath(tl.Runs, dep, now)
	return tl, nil
}

// startBy is job j's start_by deadline in the period key, zero when it
// has none: the instant its constraint asks to be re-checked at, asked
// at the beginning of time.
func startBy(ctx context.Context, j *schedule.Job, key string) time.Time {
	for i, c := range j.Constraints {
		if c.Kind != "start_by" || i >= len(j.Checks) {
			continue
		}
		p, err := calendar.ParseKey(key, j.Location)
		if err != nil {
			return time.Time{}
		}
		ans := j.Checks[i].Check(ctx, constraint.Input{Job: &j.Job, Period: p})
		return ans.RecheckAt
	}
	return time.Time{}
}

// criticalPath is the chain of runs that decided when the period's work
// ended: from the run that ended last (or runs still), back through the
// upstream whose run ended last, to a run without one.
func criticalPath(runs []view.TimelineRun, dep map[string][]string, now time.Time) []int64 {
	end := func(r talon.Run) time.Time {
		if r.Finished != nil {
			return *r.Finished
		}
		return now
	}
	// The latest run of each job that started stands for it: it did the
	// job's work in the period.
	latest := map[string]talon.Run{}
	for _, tr := range runs {
		if tr.Started == nil {
			continue
		}
		if l, ok := latest[tr.Job]; !ok || tr.ID > l.ID {
			latest[tr.Job] = tr.Run
		}
	}
	var last *talon.Run
	for _, r := range latest {
		if last == nil || end(r).After(end(*last)) || end(r).Equal(end(*last)) && r.ID > last.ID {
			r := r
			last = &r
		}
	}
	if last == nil {
		return nil
	}
	path := []int64{last.ID}
	seen := map[string]bool{last.Job: true}
	for cur := *last; ; {
		var best *talon.Run
		for _, up := range dep[cur.Job] {
			r, ok := latest[up]
			if !ok || seen[up] || r.Finished == nil {
				continue
			}
			if best == nil || r.Finished.After(*best.Finished) {
				r := r
				best = &r
			}
		}
		if best == nil {
			break
		}
		seen[best.Job] = true
		path = append(path, best.ID)
		cur = *best
	}
	slices.Reverse(path)
	return path
}

// Upstreams returns, for each job run r's job waits for or follows, that
// job's latest run in r's period (nil when it has none there): why a run
// waits on its dependencies, with their progress.
func (s *Service) Upstreams(ctx context.Context, r talon.Run) ([]view.Upstream, error) {
	ups := deps(s.sched.Schedule())[r.Job]
	out := make([]view.Upstream, 0, len(ups))
	for _, up := range ups {
		u := view.Upstream{Job: up, Period: r.Period}
		runs, err := s.st.ListRuns(ctx, store.RunFilter{Job: up, Period: r.Period, Limit: 1})
		if err != nil {
			return nil, store.UserError(err, "runs of "+up)
		}
		if len(runs) == 1 {
			u.Run = &runs[0]
		}
		out = append(out, u)
	}
	return out, nil
}
