package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
)

// bulkFlags are the filter flags cancel and retry take instead of a RUN.
type bulkFlags struct {
	req    api.BulkRequest
	states []string
}

func (b *bulkFlags) add(cmd *cobra.Command, defaults string) {
	cmd.Flags().StringVar(&b.req.Job, "job", "", "act on the runs of this job (instead of one RUN)")
	cmd.Flags().StringVar(&b.req.Period, "period", "", "act on the runs of this period (e.g. daily/2026-11-26)")
	cmd.Flags().StringSliceVar(&b.states, "state", nil, "only runs in these states (default "+defaults+")")
	cmd.Flags().BoolVar(&b.req.DryRun, "dry-run", false, "list the runs the filter matches, and do nothing")
}

// filtered reports whether a filter flag was given.
func (b *bulkFlags) filtered(cmd *cobra.Command) bool {
	for _, f := range []string{"job", "period", "state", "dry-run"} {
		if cmd.Flags().Changed(f) {
			return true
		}
	}
	return false
}

// request checks the flags and returns the API's request.
func (b *bulkFlags) request(verb string) (api.BulkRequest, error) {
	req := b.req
	if req.Job == "" && req.Period == "" {
		return req, usagef("%s: give a RUN, or --job and/or --period to %s the runs they match", verb, verb)
	}
	for _, v := range b.states {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if !talon.State(s).Valid() {
				return req, usagef("--state %q: want one of %s", s, stateNames())
			}
			req.States = append(req.States, talon.State(s))
		}
	}
	return req, nil
}

// printBulk prints what a bulk cancel or retry did, and the count.
func (g *globals) printBulk(res api.BulkResult, past string) error {
	if g.json() {
		return g.printJSON(res)
	}
	if len(res.Results) > 0 {
		w := g.table()
		row(w, "RUN", "STATE", "OUTCOME", "DETAIL")
		for _, it := range res.Results {
			detail := it.Reason
			if it.Run != 0 {
				detail = "new run " + strconv.FormatInt(it.Run, 10)
			}
			row(w, strconv.FormatInt(it.ID, 10), string(it.State), it.Outcome, orDash(oneLine(detail)))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if res.DryRun {
		fmt.Fprintf(g.stdout, "dry run: %d runs match; nothing was %s\n", res.Matched, past)
		return nil
	}
	fmt.Fprintf(g.stdout, "%s %d of %d runs matched (%d skipped)\n", past, res.Done, res.Matched, res.Skipped)
	return nil
}
