package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
)

func newShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run, the latest answer of each of its constraints, and its history",
		Args:  argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			d, err := g.api().Run(cmd.Context(), id)
			if err != nil {
				return runErr(id, err)
			}
			if g.json() {
				if d.Decisions == nil {
					d.Decisions = []talon.Decision{}
				}
				if d.Events == nil {
					d.Events = []talon.Event{}
				}
				return g.printJSON(d)
			}
			r := d.Run
			fmt.Fprintf(g.stdout, "run %d: %s for %s (attempt %d)\n", r.ID, r.Job, r.Period, r.Attempt)
			w := g.table()
			row(w, "state:", string(r.State))
			row(w, "reason:", orDash(r.Reason))
			if r.State == talon.StateBlocked && !r.RecheckAt.IsZero() {
				row(w, "recheck:", g.fmtDetail(r.RecheckAt))
			}
			row(w, "executor:", orDash(r.Executor))
			trig := orDash(r.Trigger)
			if !r.FireTime.IsZero() {
				trig += " at " + g.fmtDetail(r.FireTime)
			}
			if r.RetryOf != 0 {
				trig += fmt.Sprintf(" (retry of run %d)", r.RetryOf)
			}
			row(w, "trigger:", trig)
			if r.Key != "" {
				row(w, "key:", r.Key)
			}
			if len(r.Params) > 0 {
				row(w, "params:", keyValues(r.Params))
			}
			row(w, "created:", g.fmtDetail(r.Created))
			row(w, "started:", g.fmtDetailPtr(r.Started))
			row(w, "finished:", g.fmtDetailPtr(r.Finished))
			if r.Started != nil {
				row(w, "duration:", runDuration(r, time.Now()))
			}
			if p := r.ShownProgress(); p != nil {
				row(w, "progress:", fmtProgress(*p))
			}
			for i, a := range r.Artifacts {
				label := ""
				if i == 0 {
					label = "artifacts:"
				}
				if a.Name != "" {
					row(w, label, a.URL+" ("+a.Name+")")
				} else {
					row(w, label, a.URL)
				}
			}
			w.Flush()

			fmt.Fprintln(g.stdout, "\nconstraints:")
			if len(d.Decisions) == 0 {
				fmt.Fprintln(g.stdout, "  (none checked yet)")
			} else {
				w = g.table()
				row(w, "  CONSTRAINT", "ACTION", "REASON")
				for _, dec := range d.Decisions {
					row(w, "  "+dec.Constraint, string(dec.Action), orDash(oneLine(dec.Reason)))
				}
				w.Flush()
			}

			if rs := d.Resources; rs != nil {
				fmt.Fprintln(g.stdout, "\nresources:")
				w = g.table()
				if len(rs.Wants) > 0 {
					row(w, "  wants:", wants(rs.Wants))
				}
				label := "  holds:"
				if r.State.Terminal() {
					label = "  held:" // released when it ended
				}
				for _, h := range rs.Held {
					held := fmt.Sprintf("%s (%d)", h.Path, h.Units)
					if h.Period != "" {
						held += " in " + h.Period
					}
					row(w, label, held)
				}
				if rs.Waiting != "" {
					row(w, "  waiting:", oneLine(rs.Waiting))
				}
				w.Flush()
			}

			fmt.Fprintln(g.stdout, "\nhistory:")
			w = g.table()
			row(w, "  TIME", "FROM", "TO", "REASON")
			for _, e := range d.Events {
				row(w, "  "+g.fmtDetail(e.Time), orDash(string(e.From)), string(e.To), orDash(oneLine(e.Reason)))
			}
			return w.Flush()
		},
	}
}

// fmtProgress reads a run's progress on one line:
// "40% · 120 of 400 items · 12m of 30m · eu=done us=running · loading".
func fmtProgress(p talon.Progress) string {
	var parts []string
	if p.Percent != nil {
		parts = append(parts, strconv.FormatFloat(*p.Percent, 'f', -1, 64)+"%")
	}
	switch {
	case p.ItemsTotal > 0:
		parts = append(parts, fmt.Sprintf("%d of %d items", p.ItemsDone, p.ItemsTotal))
	case p.ItemsDone > 0:
		parts = append(parts, fmt.Sprintf("%d items", p.ItemsDone))
	}
	switch {
	case p.Elapsed != 0 && p.Expected != 0:
		parts = append(parts, fmtDuration(time.Duration(p.Elapsed))+" of "+fmtDuration(time.Duration(p.Expected)))
	case p.Expected != 0:
		parts = append(parts, "expected "+fmtDuration(time.Duration(p.Expected)))
	case p.Elapsed != 0:
		parts = append(parts, fmtDuration(time.Duration(p.Elapsed))+" elapsed")
	}
	if len(p.Items) > 0 {
		items := make([]string, len(p.Items))
		for i, it := range p.Items {
			items[i] = it.Name + "=" + it.State
		}
		parts = append(parts, strings.Join(items, " "))
	}
	if p.Message != "" {
		parts = append(parts, p.Message)
	}
	return orDash(strings.Join(parts, " · "))
}
