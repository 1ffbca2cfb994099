package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
)

func newTriggerCmd(g *globals) *cobra.Command {
	var (
		req    talon.TriggerRequest
		params []string
	)
	cmd := &cobra.Command{
		Use:   "trigger JOB",
		Short: "Create a run of a job now",
		Example: `  talon trigger load-sales
  talon trigger load-sales --period daily/2026-11-25 --param region=eu --key backfill-1125`,
		Args: argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := args[0]
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return usagef("--param %q: want NAME=VALUE", p)
				}
				if req.Params == nil {
					req.Params = map[string]string{}
				}
				req.Params[k] = v
			}
			run, created, err := g.api().Trigger(cmd.Context(), job, req)
			if err != nil {
				return g.jobErr(cmd, job, err)
			}
			if g.json() {
				return g.printJSON(run)
			}
			if created {
				fmt.Fprintf(g.stdout, "run %d created: %s for %s (%s)\n", run.ID, run.Job, run.Period, run.State)
			} else {
				fmt.Fprintf(g.stdout, "run %d already exists for key %q: %s for %s (%s)\n", run.ID, req.Key, run.Job, run.Period, run.State)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Period, "period", "", "period key (default: the period containing now)")
	cmd.Flags().StringArrayVar(&params, "param", nil, "parameter NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&req.Key, "key", "", "idempotency key: triggering again with it returns the same run")
	return cmd
}

// jobErr adds to "job not found" the names the user may have meant.
func (g *globals) jobErr(cmd *cobra.Command, job string, err error) error {
	var te *talon.Error
	if !errors.As(err, &te) || te.Code != talon.ENOTFOUND {
		return err
	}
	jobs, jerr := g.api().Jobs(cmd.Context())
	if jerr != nil {
		return withHint(err, "talon jobs")
	}
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	near := nearest(job, names)
	switch len(near) {
	case 0:
		return withHint(err, "talon jobs")
	case 1:
		return withHint(err, "%s %s", cmd.CommandPath(), near[0])
	}
	if strings.Contains(te.Message, "did you mean") {
		// The server already named one.
		return withHint(err, "%s %s", cmd.CommandPath(), near[0])
	}
	if len(near) > 5 {
		near = near[:5]
	}
	return withHint(fmt.Errorf("%w (did you mean %s?)", err, strings.Join(near, ", ")), "%s %s", cmd.CommandPath(), near[0])
}
