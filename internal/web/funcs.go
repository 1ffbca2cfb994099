package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/view"
)

func (d *Dashboard) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":      d.assetURL,
		"stateClass": stateClass,
		"colLabel":   colLabel,
		"colSub":     colSub,
		"ts":         ts,
		"iso":        iso,
		"dur": func(v any) string {
			switch d := v.(type) {
			case time.Duration:
				return dur(d)
			case talon.Duration:
				return dur(time.Duration(d))
			}
			return ""
		},
		"runDur":    runDur,
		"pct":       pct,
		"href":      artifactHref,
		"pathEsc":   url.PathEscape,
		"keyPath":   keyPath,
		"gridURL":   gridURL,
		"gridBody":  gridBody,
		"add":       func(a, b int) int { return a + b },
		"terminal":  func(s talon.State) bool { return s.Terminal() },
		"retryable": func(s talon.State) bool { return s == talon.StateFailed || s == talon.StateSkipped },
		"markable":  func(s talon.State) bool { return s != talon.StateRunning },
		"actionClass": func(a talon.Action) string {
			return "a-" + string(a)
		},
		"states": func() []talon.State {
			return []talon.State{talon.StateBlocked, talon.StateReady, talon.StateRunning, talon.StateSucceeded, talon.StateFailed, talon.StateSkipped}
		},
	}
}

// stateClass is the CSS class of a state ("s-none" for no run).
func stateClass(s talon.State) string {
	if s == "" {
		return "s-none"
	}
	return "s-" + string(s)
}

// colLabel is a grid column's short label.
func colLabel(key string) string {
	p, err := calendar.ParseKey(key, time.UTC)
	if err != nil {
		return key
	}
	switch p.Type {
	case talon.Hourly:
		return p.Start.Format("15h")
	case talon.Daily:
		return p.Start.Format("02")
	case talon.Weekly:
		_, w := p.Start.ISOWeek()
		return fmt.Sprintf("W%02d", w)
	case talon.Monthly:
		return p.Start.Format("Jan")
	case talon.Quarterly:
		return fmt.Sprintf("Q%d", (int(p.Start.Month())-1)/3+1)
	case talon.Yearly:
		return p.Start.Format("2006")
	}
	return strings.TrimPrefix(key, "oneshot/")
}

// colSub is the line under a column's label: what it belongs to.
func colSub(key string) string {
	p, err := calendar.ParseKey(key, time.UTC)
	if err != nil {
		return ""
	}
	switch p.Type {
	case talon.Hourly:
		return p.Start.Format("Jan 02")
	case talon.Daily:
		return p.Start.Format("Mon")
	case talon.Weekly:
		return p.Start.Format("Jan 02")
	case talon.Monthly, talon.Quarterly:
		return p.Start.Format("2006")
	}
	return ""
}

// ts is an instant as the page shows it before the script puts it in the
// reader's zone.
func ts(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if v == nil {
			return ""
		}
		return ts(*v)
	}
	return ""
}

// iso is an instant in RFC 3339, for <time datetime>.
func iso(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format(time.RFC3339)
	case *time.Time:
		if v == nil {
			return ""
		}
		return iso(*v)
	}
	return ""
}

// dur writes a duration for people: 45s, 3m20s, 2h05m, 3d4h.
func dur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// runDur is how long a run ran (until now when it still runs); "" when it
// never started.
func runDur(r talon.Run) string {
	if r.Started == nil {
		return ""
	}
	end := time.Now()
	if r.Finished != nil {
		end = *r.Finished
	}
	return dur(end.Sub(*r.Started))
}

// pct is a progress percentage as a whole number, clamped to 0–100.
func pct(p *float64) int {
	if p == nil || math.IsNaN(*p) {
		return 0
	}
	return int(math.Round(math.Max(0, math.Min(100, *p))))
}

// artifactHref is the link of an artifact's URL: only http and https
// URLs become links (file://, s3://… mean nothing to a browser, and
// javascript: must never be one); "" for the rest, shown as text.
func artifactHref(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// keyPath is the path of a period's page.
func keyPath(key string) string {
	return "/periods/" + strings.ReplaceAll(url.PathEscape(key), "%2F", "/")
}

// gridURL is the grid's URL with a query of pairs of name and value,
// leaving out empty values. Its values are encoded here, so it is a
// template.URL: the template would otherwise encode its '=' and '&'.
func gridURL(kv ...string) template.URL {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return "/"
	}
	return template.URL("/?" + q.Encode())
}

// gridBody writes the grid's rows. It is Go rather than template text
// because it is most of the biggest page (500 jobs by 30 periods is
// 15,000 cells, which html/template's per-value escaping takes over
// 100 ms to write): every value from outside (job names, descriptions,
// groups, period keys) goes through html.EscapeString, which is what an
// attribute or text in HTML needs; states are one of six words and ids
// numbers. Its output is asserted equal to escaped text by the tests.
func gridBody(g view.Grid) template.HTML {
	var b strings.Builder
	b.Grow(len(g.Groups)*64 + g.Jobs*(len(g.Columns)*64+200))
	esc := html.EscapeString
	for _, gr := range g.Groups {
		b.WriteString("<tbody>\n")
		if gr.Environment != "" || gr.Group != "" {
			fmt.Fprintf(&b, `<tr class="group"><th colspan="%d" scope="rowgroup"><span class="gname">`, len(g.Columns)+1)
			if gr.Environment != "" {
				b.WriteString(`<span class="env">` + esc(gr.Environment) + `</span>`)
			}
			if gr.Group != "" {
				b.WriteString(" " + esc(gr.Group))
			}
			b.WriteString("</span></th></tr>\n")
		}
		for _, row := range gr.Rows {
			b.WriteString(`<tr><th class="job" scope="row"><a href="/jobs/` + esc(url.PathEscape(row.Job)) + `" title="` + esc(row.Description) + `">` + esc(row.Job) + `</a>`)
			if row.Paused {
				b.WriteString(` <span class="badge paused">paused</span>`)
			}
			b.WriteString("</th>")
			for _, c := range row.Cells {
				b.WriteString(`<td class="` + stateClass(c.State))
				if c.NotPeriod {
					b.WriteString(` off`)
				}
				b.WriteString(`">`)
				if c.Run == 0 {
					if c.NotPeriod {
						b.WriteString(`<span title="not a period of this job"></span></td>`)
					} else {
						b.WriteString(`<span title="no run"></span></td>`)
					}
					continue
				}
				id := strconv.FormatInt(c.Run, 10)
				b.WriteString(`<a href="/runs/` + id + `" title="` + esc(string(c.State)))
				if c.Attempt > 1 {
					b.WriteString(", attempt " + strconv.Itoa(c.Attempt))
				}
				if c.Runs > 1 {
					b.WriteString(", " + strconv.Itoa(c.Runs) + " runs")
				}
				if c.Percent != nil {
					b.WriteString(", " + strconv.Itoa(pct(c.Percent)) + " %")
				}
				b.WriteString(`">`)
				if c.Runs > 1 {
					b.WriteString(`<span class="n">` + strconv.Itoa(c.Runs) + `</span>`)
				}
				if c.Percent != nil {
					b.WriteString(`<progress max="100" value="` + strconv.Itoa(pct(c.Percent)) + `"></progress>`)
				}
				b.WriteString("</a></td>")
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</tbody>\n")
	}
	return template.HTML(b.String())
}
