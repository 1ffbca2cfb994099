package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/view"
)

// gridData is the grid page's.
type gridData struct {
	view.Grid
	// The filters as the URL has them.
	Job, Env, State, End string
	Count                string
	// Older and Newer are the End of the previous and next page of
	// periods ("" when there is none newer).
	Older, Newer string
}

func (d *Dashboard) grid(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := view.GridFilter{
		Type: talon.PeriodType(q.Get("type")), End: q.Get("end"),
		Job: q.Get("job"), Environment: q.Get("env"),
	}
	if v := q.Get("n"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return talon.Errorf(talon.EINVALID, "n %q: want a number of periods, 1 to %d", v, view.MaxColumns)
		}
		f.Count = n
	}
	for st := range strings.SplitSeq(q.Get("state"), ",") {
		if st = strings.TrimSpace(st); st == "" {
			continue
		}
		if !talon.State(st).Valid() {
			return talon.Errorf(talon.EINVALID, "state %q: want blocked, ready, running, succeeded, failed or skipped", st)
		}
		f.States = append(f.States, talon.State(st))
	}
	g, err := d.b.Grid(r.Context(), f)
	if err != nil {
		return err
	}
	data := gridData{Grid: g, Job: f.Job, Env: f.Environment, State: q.Get("state"), End: f.End, Count: q.Get("n")}
	if len(g.Columns) > 0 && g.Type != talon.Oneshot {
		first, _ := calendar.ParseKey(g.Columns[0], time.UTC)
		if p, err := calendar.Shift(first, -1, nil); err == nil {
			data.Older = p.Key()
		}
		last := g.Columns[len(g.Columns)-1]
		if last < g.Current {
			lp, _ := calendar.ParseKey(last, time.UTC)
			if p, err := calendar.Shift(lp, len(g.Columns), nil); err == nil {
				data.Newer = min(p.Key(), g.Current)
			}
		}
	}
	p := d.newPage(w, r, "Grid", data)
	p.Nav = "grid"
	p.Events = "type=transition,progress"
	return d.render(w, http.StatusOK, "grid.html", p)
}

// runData is the run page's.
type runData struct {
	view.RunDetail
	// History is the run's events with how long each state of affairs
	// lasted: until the next event, or now.
	History []span
	// Holders are, for a run waiting for resources, who holds what it
	// wants.
	Holders []resource.Hold
	// Elapsed is how long it has run; Expected what its progress expects.
	Elapsed   time.Duration
	Progress  *talon.Progress
	Artifacts []artifactLink
	Params    []param
	Now       time.Time
	// Upstreams are the jobs it waits for or follows, with their runs in
	// its period.
	Upstreams []view.Upstream
}

type span struct {
	talon.Event
	Until   time.Time
	Ongoing bool
}

type artifactLink struct {
	talon.Artifact
	Href string
}

type param struct{ Name, Value string }

func (d *Dashboard) run(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rd, err := d.b.Run(r.Context(), id)
	if err != nil {
		return err
	}
	now := time.Now()
	data := runData{RunDetail: rd, Now: now, Progress: rd.Run.ShownProgress()}
	for i, e := range rd.Events {
		s := span{Event: e}
		switch {
		case i+1 < len(rd.Events):
			s.Until = rd.Events[i+1].Time
		case rd.Run.Finished != nil:
			s.Until = *rd.Run.Finished
		default:
			s.Until, s.Ongoing = now, true
		}
		data.History = append(data.History, s)
	}
	if rd.Run.Started != nil {
		end := now
		if rd.Run.Finished != nil {
			end = *rd.Run.Finished
		}
		data.Elapsed = end.Sub(*rd.Run.Started)
	}
	if rd.Resources != nil && rd.Resources.Waiting != "" {
		rv, err := d.b.Resources(r.Context())
		if err != nil {
			return err
		}
		for _, info := range rv.Resources {
			for _, want := range rd.Resources.Wants {
				if info.Path == want.Path || strings.HasPrefix(info.Path, strings.TrimSuffix(want.Path, "*")) && strings.HasSuffix(want.Path, "*") {
					data.Holders = append(data.Holders, info.Holders...)
				}
			}
		}
	}
	if data.Upstreams, err = d.b.Upstreams(r.Context(), rd.Run); err != nil {
		return err
	}
	for _, a := range rd.Run.Artifacts {
		data.Artifacts = append(data.Artifacts, artifactLink{Artifact: a, Href: artifactHref(a.URL)})
	}
	for k, v := range rd.Run.Params {
		data.Params = append(data.Params, param{k, v})
	}
	slices.SortFunc(data.Params, func(a, b param) int { return strings.Compare(a.Name, b.Name) })
	p := d.newPage(w, r, "Run "+strconv.FormatInt(id, 10)+" · "+rd.Run.Job, data)
	p.Events = "run=" + strconv.FormatInt(id, 10)
	return d.render(w, http.StatusOK, "run.html", p)
}

func pathID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, talon.Errorf(talon.EINVALID, "run id %q: want a positive integer", s)
	}
	return id, nil
}

// jobData is the job page's.
type jobData struct {
	view.JobDetail
	Chart chart
}

// The job page shows this many next fires and past runs.
const (
	jobFires   = 8
	jobHistory = 60
)

func (d *Dashboard) job(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	jd, err := d.b.JobDetail(r.Context(), name, jobFires, jobHistory)
	if err != nil {
		return err
	}
	data := jobData{JobDetail: jd, Chart: durationChart(jd.History, time.Now())}
	p := d.newPage(w, r, "Job "+name, data)
	p.Events = "job=" + url.QueryEscape(name)
	return d.render(w, http.StatusOK, "job.html", p)
}

func (d *Dashboard) period(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	tl, err := d.b.Timeline(r.Context(), key)
	if err != nil {
		return err
	}
	p := d.newPage(w, r, "Period "+key, gantt(tl, time.Now()))
	p.Events = "type=transition,progress"
	return d.render(w, http.StatusOK, "period.html", p)
}

// resourceRow is one node of the resources page.
type resourceRow struct {
	view.ResourceInfo
	Depth  int
	Name   string
	Free   int
	Period []periodUse
	// Low and High colour the gauge: green below three quarters, amber
	// up to full, red when full.
	Low, High float64
}

type periodUse struct {
	Period string
	Units  int
}

type resourcesData struct {
	Rows    []resourceRow
	Waiters []resource.Waiter
}

func (d *Dashboard) resources(w http.ResponseWriter, r *http.Request) error {
	rv, err := d.b.Resources(r.Context())
	if err != nil {
		return err
	}
	var data resourcesData
	for _, info := range rv.Resources {
		row := resourceRow{ResourceInfo: info, Depth: strings.Count(info.Path, "/"), Name: info.Path, Free: info.Capacity - info.Used}
		row.Low = float64(info.Capacity) * 0.75
		row.High = max(float64(info.Capacity)-0.5, row.Low)
		if i := strings.LastIndex(info.Path, "/"); i >= 0 {
			row.Name = info.Path[i+1:]
		}
		for k, v := range info.Periods {
			row.Period = append(row.Period, periodUse{k, v})
		}
		slices.SortFunc(row.Period, func(a, b periodUse) int { return strings.Compare(b.Period, a.Period) })
		data.Rows = append(data.Rows, row)
	}
	slices.SortStableFunc(data.Rows, func(a, b resourceRow) int { return strings.Compare(a.Path, b.Path) })
	data.Waiters = rv.Waiters
	p := d.newPage(w, r, "Resources", data)
	p.Nav = "resources"
	p.Events = "type=transition"
	return d.render(w, http.StatusOK, "resources.html", p)
}
