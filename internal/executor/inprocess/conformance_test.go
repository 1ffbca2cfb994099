package inprocess_test

import (
	"context"
	"testing"

	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/executortest"
	"github.com/talonhq/talon/internal/executor/inprocess"
)

// conformance is the inprocess executor as the executor suite sees it:
// a function "conformance" that behaves as the suite's jobs do.
var conformance = executortest.Backend{
	New: func() executor.Executor {
		ex := inprocess.New()
		ex.Register("conformance", func(ctx context.Context, r inprocess.Run) error {
			return executortest.Behave(ctx, r.Args, r.Env, r.Log)
		})
		return ex
	},
	Command: func(j executortest.Job) []string {
		if j.Mode == executortest.ModeMissing {
			return []string{executortest.MissingProgram}
		}
		return append([]string{"conformance"}, executortest.FuncArgs(j)...)
	},
	NoProcesses:  "a run is a goroutine of the scheduler, not a process: that Wait returned shows the function returned",
	NoExitStatus: "a function returns an error, not an exit status (ExitCode is 1 for every failure)",
	NoJobEnv:     "a job's env has no effect with executor inprocess (the schedule refuses it); functions get the run's env",
	NoIgnoreTerm: "a function gets a context, not signals; one that ignores its context cannot be stopped (documented)",
}

func TestMain(m *testing.M) { executortest.Main(m, conformance) }

func TestConformance(t *testing.T) { executortest.Run(t, conformance) }
