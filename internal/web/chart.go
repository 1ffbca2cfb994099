package web

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/view"
)

// Charts are SVG drawn on the server: positions are attributes, which the
// Content-Security-Policy allows (it forbids inline styles), and they
// show without the script.

// chart is the job page's durations: one bar per run, oldest first.
type chart struct {
	W, H float64
	Bars []bar
	// Max is the longest duration, the chart's top.
	Max string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Run        int64
	Title      string
}

func durationChart(runs []talon.Run, now time.Time) chart {
	c := chart{W: 600, H: 80}
	var rs []talon.Run
	for _, r := range runs {
		if r.Started != nil {
			rs = append(rs, r)
		}
	}
	slices.Reverse(rs)
	if len(rs) == 0 {
		return c
	}
	durs := make([]time.Duration, len(rs))
	var longest time.Duration
	for i, r := range rs {
		end := now
		if r.Finished != nil {
			end = *r.Finished
		}
		durs[i] = max(end.Sub(*r.Started), 0)
		longest = max(longest, durs[i])
	}
	if longest == 0 {
		longest = time.Second
	}
	c.Max = dur(longest)
	step := c.W / float64(max(len(rs), 20))
	for i, r := range rs {
		h := max(2, (c.H-4)*float64(durs[i])/float64(longest))
		c.Bars = append(c.Bars, bar{
			X: float64(i)*step + 1, Y: c.H - h, W: max(step-2, 1), H: h,
			Class: stateClass(r.State), Run: r.ID,
			Title: fmt.Sprintf("run %d · %s · %s · %s", r.ID, r.Period, r.State, dur(durs[i])),
		})
	}
	return c
}

// ganttData is the period page's.
type ganttData struct {
	view.Timeline
	W, H, Left float64
	Rows       []ganttRow
	Edges      []ganttEdge
	Ticks      []tick
	Missed     int
	From, To   time.Time
}

type ganttRow struct {
	Run      view.TimelineRun
	Y        float64
	TextY    float64
	WaitX    float64
	WaitW    float64
	RunX     float64
	RunW     float64
	Started  bool
	Critical bool
	Deadline bool
	DeadX    float64
	DeadY2   float64
}

type ganttEdge struct {
	Path     string
	Critical bool
}

type tick struct {
	X     float64
	Label string
}

// Gantt geometry: a label column, then the time axis.
const (
	ganttLeft  = 180.0
	ganttWidth = 960.0
	ganttStep  = 24.0
	ganttTop   = 24.0
)

func gantt(tl view.Timeline, now time.Time) ganttData {
	g := ganttData{Timeline: tl, W: ganttWidth, Left: ganttLeft}
	if len(tl.Runs) == 0 {
		g.H = ganttTop
		return g
	}
	end := func(r talon.Run) time.Time {
		if r.Finished != nil {
			return *r.Finished
		}
		return now
	}
	// The axis spans the runs; a start_by deadline is drawn when it falls
	// near them (the table lists every one).
	from, to := tl.Runs[0].Created, end(tl.Runs[0].Run)
	for _, r := range tl.Runs {
		from = minTime(from, r.Created)
		to = maxTime(to, end(r.Run))
	}
	if to.Sub(from) < time.Minute {
		to = from.Add(time.Minute)
	}
	span := to.Sub(from)
	for _, r := range tl.Runs {
		if d := r.Deadline; !d.IsZero() && !d.Before(from.Add(-span/4)) && !d.After(to.Add(span/4)) {
			from, to = minTime(from, d), maxTime(to, d)
		}
	}
	span = to.Sub(from)
	// A little room on the right for the last bar's end.
	to = to.Add(span / 40)
	span = to.Sub(from)
	g.From, g.To = from, to
	plot := ganttWidth - ganttLeft - 8
	x := func(t time.Time) float64 { return ganttLeft + plot*float64(t.Sub(from))/float64(span) }
	critical := map[int64]bool{}
	for _, id := range tl.Critical {
		critical[id] = true
	}
	// Dependencies attach to the latest run of each job that started (as
	// the critical path counts it), else to its latest.
	lastRow, startedRow := map[string]int{}, map[string]int{}
	for i, r := range tl.Runs {
		y := ganttTop + float64(i)*ganttStep
		row := ganttRow{Run: r, Y: y + 4, TextY: y + 16, Critical: critical[r.ID]}
		row.WaitX = x(r.Created)
		if r.Started != nil {
			row.Started = true
			row.WaitW = max(x(*r.Started)-row.WaitX, 0)
			row.RunX = x(*r.Started)
			row.RunW = max(x(end(r.Run))-row.RunX, 2)
		} else {
			row.WaitW = max(x(end(r.Run))-row.WaitX, 2)
		}
		if d := r.Deadline; !d.IsZero() && !d.Before(from) && !d.After(to) {
			row.Deadline, row.DeadX, row.DeadY2 = true, x(d), row.Y+16
		}
		if r.Missed {
			g.Missed++
		}
		g.Rows = append(g.Rows, row)
		lastRow[r.Job] = i
		if row.Started {
			startedRow[r.Job] = i
		}
	}
	maps.Copy(lastRow, startedRow)
	g.H = ganttTop + float64(len(tl.Runs))*ganttStep + 8
	for _, e := range tl.Edges {
		ui, ok1 := lastRow[e.From]
		di, ok2 := lastRow[e.To]
		if !ok1 || !ok2 {
			continue
		}
		u, dn := g.Rows[ui], g.Rows[di]
		x1 := u.WaitX + u.WaitW
		if u.Started {
			x1 = u.RunX + u.RunW
		}
		y1 := u.Y + 8
		// To where the downstream started, or where its wait ends so
		// far: the moment the upstream's end let (or will let) it go.
		x2 := dn.WaitX + dn.WaitW
		if dn.Started {
			x2 = dn.RunX
		}
		y2 := dn.Y + 8
		g.Edges = append(g.Edges, ganttEdge{
			Path:     fmt.Sprintf("M%.1f %.1f C%.1f %.1f %.1f %.1f %.1f %.1f", x1, y1, x1+24, y1, x2-24, y2, x2, y2),
			Critical: u.Critical && dn.Critical,
		})
	}
	// Ticks: about six, on round steps.
	steps := []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
		15 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 6 {
			step = s
			break
		}
	}
	layout := "15:04"
	if step < time.Minute {
		layout = "15:04:05"
	} else if step >= 24*time.Hour {
		layout = "Jan 02"
	}
	for t := from.Truncate(step).Add(step); t.Before(to); t = t.Add(step) {
		g.Ticks = append(g.Ticks, tick{X: x(t), Label: t.UTC().Format(layout)})
	}
	return g
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
