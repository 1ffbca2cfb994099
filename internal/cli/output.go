package cli

import (
	"encoding/json"
	"fmt"
	"github.com/talonhq/talon/internal/suggest"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/talonhq/talon"
)

// timeLayout is RFC 3339 to the minute, in the local zone: short enough
// for a table, and still unambiguous. detailLayout keeps the seconds, for
// a run's own page, where steps a few seconds apart must read apart.
const (
	timeLayout   = "2006-01-02T15:04Z07:00"
	detailLayout = "2006-01-02T15:04:05Z07:00"
)

func (g *globals) json() bool { return g.output == "json" }

// printJSON prints v as the API would, indented for people who pipe it
// to less rather than jq.
func (g *globals) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintf(g.stdout, "%s\n", b)
	return err
}

// table returns a writer whose tab-separated columns are aligned when it
// is flushed.
func (g *globals) table() *tabwriter.Writer {
	return tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
}

func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

func (g *globals) fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(g.loc).Format(timeLayout)
}

func (g *globals) fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return g.fmtTime(*t)
}

func (g *globals) fmtDetail(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(g.loc).Format(detailLayout)
}

func (g *globals) fmtDetailPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return g.fmtDetail(*t)
}

// fmtRFC3339 reformats a time the API sent as a string.
func (g *globals) fmtRFC3339(s string) string {
	if s == "" {
		return "-"
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return g.fmtTime(t)
}

// duration of a run: finished - started, or so far for a running run.
func runDuration(r talon.Run, now time.Time) string {
	if r.Started == nil {
		return "-"
	}
	end := now
	if r.Finished != nil {
		end = *r.Finished
	}
	return fmtDuration(end.Sub(*r.Started))
}

// fmtDuration rounds to what a person reads: seconds under an hour,
// minutes above.
func fmtDuration(d time.Duration) string {
	var s string
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		s = d.Round(time.Second).String()
	default:
		s = d.Round(time.Minute).String()
	}
	// "12m0s" reads better as "12m", and "2h0m" as "2h".
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// counts reads a run-count map as "2 succeeded, 1 failed", in the order
// of a run's life.
func counts(c map[talon.State]int) string {
	var parts []string
	for _, s := range talon.States {
		if n := c[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return orDash(strings.Join(parts, ", "))
}

func keyValues(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

// nearest returns the names close to name (a typo, a prefix, a part),
// closest first.
func nearest(name string, names []string) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, n := range names {
		d := suggest.Distance(strings.ToLower(name), strings.ToLower(n))
		limit := max(2, len(name)/3)
		switch {
		case n == name:
			continue
		case d <= limit:
		case len(name) >= 3 && strings.Contains(n, name):
			d = limit + 1
		default:
			continue
		}
		cs = append(cs, cand{n, d})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// pages fetches a list through fetch, one page of at most limit after
// another while all is set: each page starts before the id that the
// last item of the previous one has (the API's before cursor).
func pages[T any](all bool, limit int, before *int64, id func(T) int64, fetch func() ([]T, error)) ([]T, error) {
	var out []T
	for {
		page, err := fetch()
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !all || len(page) < limit {
			return out, nil
		}
		*before = id(page[len(page)-1])
	}
}
