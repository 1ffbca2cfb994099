//go:build linux

package local_test

import (
	"testing"
	"time"

	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/executortest"
	"github.com/talonhq/talon/internal/executor/local"
)

// conformance is the local executor as the executor suite sees it: its
// processes run on this host, so ps shows what is left of a run.
var conformance = executortest.Backend{
	New: func() executor.Executor {
		ex := local.New(nil)
		ex.Grace = 200 * time.Millisecond
		return ex
	},
	Command: executortest.ShellCommand,
	Left:    executortest.LocalLeft,
}

func TestConformance(t *testing.T) { executortest.Run(t, conformance) }

// BenchmarkDispatchToStart: dispatch → process started (p50/p99).
func BenchmarkDispatchToStart(b *testing.B) { executortest.BenchStart(b, conformance) }
