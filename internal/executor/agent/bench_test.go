//go:build linux

package agent_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/api/apitest"
	"github.com/talonhq/talon/internal/executor"
	agentexec "github.com/talonhq/talon/internal/executor/agent"
	"github.com/talonhq/talon/internal/executor/executortest"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/talontest"
)

// benchRig is a server of the agents' protocol on loopback, whose
// executor also starts the runs (as one talon serve does), and a real
// agent with 8 slots.
type benchRig struct {
	dir string
	st  store.Store
	ex  *agentexec.Executor
	loc *local.Executor
}

func newBenchRig(b *testing.B) *benchRig {
	b.Helper()
	dir := b.TempDir()
	st, err := sqlite.Open(b.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ex, err := agentexec.New(agentexec.Config{Store: st, LogPath: func(r talon.Run) string { return logPath(dir, r) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ex.Close() })
	srv := httptest.NewServer(api.NewServer(apitest.New(), discard(), api.WithAgents(ex)))
	b.Cleanup(srv.Close)
	startAgent(b, buildTalon(b), srv.URL, "bench", filepath.Join(dir, "agent"), "--slots", "8")
	waitAgent(b, st, "bench")
	return &benchRig{dir: dir, st: st, ex: ex, loc: local.New(nil)}
}

var benchRun atomic.Int64

// spec is a run of job "bench" on the agent.
func (r *benchRig) spec(command ...string) executor.Spec {
	id := benchRun.Add(1)
	run := talon.Run{ID: id, Job: "bench", Created: time.Now()}
	return executor.Spec{
		Run: run, Job: &talon.Job{Name: "bench", Command: command},
		Env:       []string{"TALON_RUN_ID=" + strconv.FormatInt(id, 10), "TALON_JOB=bench"},
		LogPath:   logPath(r.dir, run),
		OnLine:    func(string) {}, // as the engine does: it reads ::talon directives
		Resources: []executor.Resource{{Path: store.AgentPath("bench"), Units: 1}},
	}
}

// startedAfter runs s on ex and returns how long after the call the job's
// process began (it writes the time to a file: the process's own word).
func startedAfter(b *testing.B, ex executor.Executor, s executor.Spec, out string) time.Duration {
	b.Helper()
	begun := time.Now()
	p, err := ex.Start(b.Context(), s)
	if err != nil {
		b.Fatalf("Start: %v", err)
	}
	if o := p.Wait(); !o.Succeeded {
		b.Fatalf("outcome = %+v", o)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		b.Fatalf("the job wrote %q", raw)
	}
	return time.Unix(0, ns).Sub(begun)
}

// BenchmarkAgentDispatch measures dispatch → process started: from the
// executor's Start to the moment the job's own process ran (it writes the
// time), through an agent on loopback, and through the local executor
// in the same iterations, for the ratio.
func BenchmarkAgentDispatch(b *testing.B) {
	r := newBenchRig(b)
	out := filepath.Join(r.dir, "started")
	cmd := []string{"sh", "-c", `date +%s%N > "$OUT"`}
	var agentDs, localDs []time.Duration
	for b.Loop() {
		s := r.spec(cmd...)
		s.Env = append(s.Env, "OUT="+out)
		agentDs = append(agentDs, startedAfter(b, r.ex, s, out))
		s = r.spec(cmd...)
		s.Env = append(s.Env, "OUT="+out)
		localDs = append(localDs, startedAfter(b, r.loc, s, out))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(talontest.Percentile(agentDs, 50)), "agent-p50-ms")
	b.ReportMetric(ms(talontest.Percentile(agentDs, 99)), "agent-p99-ms")
	b.ReportMetric(ms(talontest.Percentile(localDs, 50)), "local-p50-ms")
	b.ReportMetric(ms(talontest.Percentile(localDs, 99)), "local-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAgentNoop measures no-op runs (/bin/true) per second through
// one agent with 8 slots on loopback, 8 started at once (the slots the
// scheduler fills), from Start to the outcome; and the local executor's
// rate in the same iterations, for the ratio.
func BenchmarkAgentNoop(b *testing.B) {
	r := newBenchRig(b)
	const batch, workers = 64, 8
	var agentDur, localDur time.Duration
	var agentRuns, localRuns int64
	for b.Loop() {
		t0 := time.Now()
		agentRuns += runAll(b, r.ex, r, batch, workers)
		agentDur += time.Since(t0)
		t0 = time.Now()
		localRuns += runAll(b, r.loc, r, batch, workers)
		localDur += time.Since(t0)
	}
	agentRate := float64(agentRuns) / agentDur.Seconds()
	localRate := float64(localRuns) / localDur.Seconds()
	b.ReportMetric(agentRate, "runs/s")
	b.ReportMetric(localRate, "local-runs/s")
	b.ReportMetric(agentRate/localRate, "ratio")
	b.ReportMetric(0, "ns/op")
}

// runAll runs n no-op runs on ex, workers at once, and returns n.
func runAll(b *testing.B, ex executor.Executor, r *benchRig, n, workers int) int64 {
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				p, err := ex.Start(b.Context(), r.spec("/bin/true"))
				if err != nil {
					errs <- err
					return
				}
				if o := p.Wait(); !o.Succeeded {
					errs <- fmt.Errorf("outcome = %+v", o)
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

// unclosed is an executor the suite's benchmark may not close: the rig's,
// which serves the agent too, as one talon serve's does.
type unclosed struct{ executor.Executor }

// BenchmarkDispatchToStart is the suite's dispatch → process started
// (executortest.BenchStart, as local and ssh run it), through a real
// agent on loopback whose server is the executor that starts the runs.
func BenchmarkDispatchToStart(b *testing.B) {
	r := newBenchRig(b)
	bk := conformance
	bk.New = func() executor.Executor { return unclosed{r.ex} }
	bk.Prepare = func(s *executor.Spec) {
		cs, err := r.st.CreateRuns(b.Context(), []store.CreateRun{{Job: s.Run.Job, Period: s.Run.Period, Trigger: "api",
			Key: "bench-" + strconv.FormatInt(s.Run.ID, 10), Executor: "agent", Now: time.Now()}})
		if err != nil {
			b.Fatal(err)
		}
		s.Run = cs[0].Run
		s.Resources = []executor.Resource{{Path: store.AgentPath("bench"), Units: 1}}
		s.LogPath = logPath(r.dir, s.Run)
	}
	executortest.BenchStart(b, bk)
}
