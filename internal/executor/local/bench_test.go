//go:build linux

package local_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/executor/local"
)

// BenchmarkStart measures what the executor adds to every run: starting
// /bin/true and waiting for its outcome, with a log file.
func BenchmarkStart(b *testing.B) {
	ex := local.New(nil)
	s := spec(b.TempDir(), "/bin/true")
	s.LogPath = filepath.Join(b.TempDir(), "true.log")
	for b.Loop() {
		p, err := ex.Start(b.Context(), s)
		if err != nil {
			b.Fatalf("Start: %v", err)
		}
		if o := p.Wait(); !o.Succeeded {
			b.Fatalf("outcome = %+v", o)
		}
	}
}

// spawnWorkers is how many goroutines start runs at once in
// BenchmarkLocalSpawn, as triggers arriving together keep several starts
// in flight in the engine (which allows up to 16).
const spawnWorkers = 8

// BenchmarkLocalSpawn compares the local executor's rate of /bin/true
// runs (Start with a log file and a line handler, as the engine starts
// them, then Wait; spawnWorkers at once) with
// what os/exec alone does on the same machine in the same benchmark
// (exec.Command("/bin/true").Run(), spawnWorkers at once). Each
// iteration runs both, back to back, so a busy machine slows both
// alike; "ratio" is the executor's rate over os/exec's.
func BenchmarkLocalSpawn(b *testing.B) {
	ex := local.New(nil)
	dir := b.TempDir()
	var execDur, localDur time.Duration
	var execRuns, localRuns int64
	// Each iteration is a batch, large enough that the start-up of the
	// goroutines is lost in it.
	const batch = 64
	for b.Loop() {
		start := time.Now()
		execRuns += spawnAll(b, batch, func(int64) error { return exec.Command("/bin/true").Run() })
		execDur += time.Since(start)

		start = time.Now()
		localRuns += spawnAll(b, batch, func(n int64) error {
			s := spec(dir, "/bin/true")
			s.Run.ID = n
			s.Env = []string{fmt.Sprintf("TALON_RUN_ID=%d", n), "TALON_JOB=load", "TALON_PERIOD=daily/2026-11-26"}
			s.LogPath = filepath.Join(dir, "logs", "load", fmt.Sprintf("%d.log", n))
			// As the engine does: it reads ::talon directives.
			s.OnLine = func(string) {}
			p, err := ex.Start(b.Context(), s)
			if err != nil {
				return err
			}
			if o := p.Wait(); !o.Succeeded {
				return fmt.Errorf("outcome = %+v", o)
			}
			return nil
		})
		localDur += time.Since(start)
	}
	localRate := float64(localRuns) / localDur.Seconds()
	execRate := float64(execRuns) / execDur.Seconds()
	b.ReportMetric(localRate, "runs/s")
	b.ReportMetric(execRate, "exec_runs/s")
	b.ReportMetric(localRate/execRate, "ratio")
}

// runSeq numbers the local runs of BenchmarkLocalSpawn across batches,
// so each has its own log and status file.
var runSeq atomic.Int64

// spawnAll runs f n times on spawnWorkers goroutines and returns n.
func spawnAll(b *testing.B, n int, f func(run int64) error) int64 {
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	errs := make(chan error, spawnWorkers)
	for range spawnWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := f(runSeq.Add(1)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return int64(n)
}
