package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon/internal/schedule"
)

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check schedule files (or directories of them) without a server",
		Long: `Check schedule files, or directories of *.yaml files, without a server.
Every problem is reported as file:line:col: message.`,
		Args: argsWant(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			sched, err := schedule.Load(offlineOptions(), args...)
			var list schedule.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					fmt.Fprintln(g.stderr, e.Error())
				}
				return errorCount(list)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, sched.Summary())
			return nil
		},
	}
}

// errorCount is the last line of a failed validate: "2 errors in
// jobs/etl.yaml" when one file holds them all, else "5 errors".
func errorCount(list schedule.ErrorList) error {
	noun := "errors"
	if len(list) == 1 {
		noun = "error"
	}
	file := list[0].Pos.File
	for _, e := range list {
		if e.Pos.File != file {
			file = ""
			break
		}
	}
	if file == "" {
		return fmt.Errorf("%d %s", len(list), noun)
	}
	return fmt.Errorf("%d %s in %s", len(list), noun, file)
}
