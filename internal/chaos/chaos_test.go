//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	flagDuration = flag.Duration("chaos.duration", 105*time.Second, "how long faults are injected (the short form's default; 20m or more for a release check)")
	flagSeed     = flag.Uint64("chaos.seed", 0, "seed of the schedule and the faults (0: from the clock; the report prints it)")
	flagKeep     = flag.Bool("chaos.keep", false, "keep the temporary directory (PostgreSQL data, logs, history, report) for inspection")
	flagLease    = flag.Duration("chaos.lease", 6*time.Second, "the schedulers' lease (talon.yaml lease:, 3s to 10m); short, so faults play out fast")
	flagTick     = flag.Duration("chaos.tick", 100*time.Millisecond, "how often a job's deepest process writes a tick")
	flagSlack    = flag.Duration("chaos.slack", 2*time.Second, "slack on the detection bound (lease + lease/3)")
)

// TestMain lets the test binary double as the jobs' program: the
// schedule runs it with "chaosjob" as its first argument.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == jobArg {
		os.Exit(jobMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

const schedulers = 3

// harness is one chaos run.
type harness struct {
	dir     string
	pg      *cluster
	scheds  []*scheduler
	jobs    []*jobPlan
	history string
	out     io.Writer // the report: stdout and dir/report.txt
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.out, "chaos: "+format+"\n", args...)
}

func TestChaos(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	r := rand.New(rand.NewPCG(seed, seed^0x7a1043))

	dir, err := os.MkdirTemp("", "talon-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	// The postgres user must reach its data directory below dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	report, err := os.Create(filepath.Join(dir, "report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{dir: dir, history: filepath.Join(dir, "history"), out: io.MultiWriter(os.Stdout, report)}
	defer func() {
		report.Close()
		if *flagKeep {
			fmt.Printf("chaos: kept %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	h.logf("seed %d (rerun: go test -tags chaos -count=1 -run TestChaos ./internal/chaos -chaos.seed %d -chaos.duration %s); dir %s", seed, seed, *flagDuration, dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dl, ok := t.Deadline(); ok {
		need := *flagDuration + 3*time.Minute
		if time.Until(dl) < need {
			t.Fatalf("the test's -timeout leaves %s; a %s run needs about %s: pass -timeout %s",
				time.Until(dl).Round(time.Second), *flagDuration, need, (need + 5*time.Minute).Round(time.Minute))
		}
		var c context.CancelFunc
		ctx, c = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer c()
	}

	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	bin, err := buildTalon(ctx, repo, dir)
	if err != nil {
		t.Fatal(err)
	}
	h.logf("built talon in %s", time.Since(t0).Round(100*time.Millisecond))

	h.pg, err = newCluster(ctx, dir)
	if err != nil {
		t.Fatalf("start the harness's own PostgreSQL: %v", err)
	}
	defer h.pg.shutdown()
	h.logf("PostgreSQL (%s) on 127.0.0.1:%d, data in %s", h.pg.bin, h.pg.port, h.pg.data())

	lease := *flagLease
	h.logf("lease %s", lease)
	bound := lease + lease/3 + *flagSlack

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h.jobs = planJobs(r)
	faults := planFaults(r, *flagDuration, lease, bound, schedulers)

	// Triggers end when the fault phase does, so that runs can settle.
	const warmup = 6 * time.Second
	phaseStart := time.Now().Add(warmup).Truncate(time.Second)
	fireEnd := phaseStart.Add(*flagDuration)
	schedPath := filepath.Join(dir, "schedule.yaml")
	if err := os.WriteFile(schedPath, []byte(scheduleYAML(h.jobs, fireEnd, self, h.history, seed, *flagTick)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runOut(bin, "validate", schedPath); err != nil {
		t.Fatalf("the generated schedule does not validate: %v\n%s", err, out)
	}

	for i := range schedulers {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s, err := newScheduler(fmt.Sprintf("s%d", i+1), dir, bin, h.pg.TalonURL(), schedPath, port, lease)
		if err != nil {
			t.Fatal(err)
		}
		h.scheds = append(h.scheds, s)
	}
	defer h.stopAll()
	for _, s := range h.scheds {
		if _, err := s.start(); err != nil {
			t.Fatal(err)
		}
	}
	var firstServing time.Time
	for i, s := range h.scheds {
		wctx, c := context.WithTimeout(ctx, time.Minute)
		err := s.current().waitServing(wctx)
		c()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			firstServing = time.Now()
			if err := h.addEventStamp(ctx); err != nil {
				t.Fatalf("stamp events with the database's clock: %v", err)
			}
		}
	}
	h.logf("%d schedulers serving; %d jobs; faults from %s to %s", schedulers, len(h.jobs), clock(phaseStart), clock(fireEnd))

	// The fault phase.
	sleepUntil(ctx, phaseStart)
	for _, f := range faults {
		sleepUntil(ctx, phaseStart.Add(f.offset))
		if ctx.Err() != nil {
			break
		}
		h.inject(ctx, f)
		h.logf("fault %s", f)
	}
	faultsEnd := time.Now()
	if faultsEnd.Before(fireEnd) {
		faultsEnd = fireEnd
		sleepUntil(ctx, fireEnd)
	}

	// Settle: every run terminal, and no job process writing, within
	// the bound.
	maxWork, maxDelay := time.Duration(0), time.Duration(0)
	for _, j := range h.jobs {
		maxWork = max(maxWork, j.longest())
		maxDelay = max(maxDelay, j.delay)
	}
	settleBy := faultsEnd.Add(bound + maxWork + maxDelay + 20*time.Second)
	if !h.settle(ctx, settleBy) {
		h.logf("runs did not settle by %s", clock(settleBy))
	}
	checkAt := time.Now()

	runs, instPIDs, err := h.readStore(ctx)
	if err != nil {
		t.Fatalf("read the store: %v", err)
	}
	hist, err := readHistory(h.history)
	if err != nil {
		t.Fatal(err)
	}
	c := &checker{
		runs: runs, hist: hist, faults: faults, jobs: map[string]*jobPlan{}, procOf: map[string]*talonProc{},
		outages: h.pg.outages(), tick: *flagTick, lease: lease, slack: *flagSlack, bound: bound,
		fireFrom: firstServing.Add(2 * time.Second), fireTo: fireEnd,
		faultsEnd: faultsEnd, settleBy: settleBy, checkedAt: checkAt,
	}
	c.ids = sortedKeys(runs)
	for _, j := range h.jobs {
		c.jobs[j.name] = j
	}
	for _, s := range h.scheds {
		for _, p := range s.all() {
			c.procs = append(c.procs, p)
			if id := p.instanceID(); id != "" {
				c.procOf[id] = p
			}
		}
	}
	for id, pid := range instPIDs {
		if c.procOf[id] != nil {
			continue
		}
		for _, s := range h.scheds {
			for _, p := range s.all() {
				if p.pid == pid {
					c.procOf[id] = p
				}
			}
		}
	}

	results := c.all()
	h.printReport(seed, lease, faults, runs, hist, results)
	for i, res := range results {
		if !res.pass() {
			t.Errorf("check %d (%s): %d violations", i+1, res.name, len(res.violations))
		}
	}
	if len(hist.bad) > 0 {
		t.Errorf("history file has %d lines that do not parse, e.g. %q", len(hist.bad), hist.bad[0])
	}
	for _, f := range faults {
		if f.err != nil {
			t.Errorf("fault %s", f)
		}
	}
}

// settle waits until every run is terminal and no job process has
// written for a while, or until by. It reports whether that happened.
func (h *harness) settle(ctx context.Context, by time.Time) bool {
	quiet := 0
	for time.Now().Before(by) && ctx.Err() == nil {
		n, err := h.unsettled(ctx)
		hist, herr := readHistory(h.history)
		if err == nil && herr == nil && n == 0 && time.Since(hist.lastAny) > time.Second {
			quiet++
			if quiet >= 3 {
				return true
			}
		} else {
			quiet = 0
		}
		sleepUntil(ctx, time.Now().Add(500*time.Millisecond))
	}
	return false
}

// stopAll ends the schedulers (SIGTERM, as an operator would) and then
// any job process still alive, so nothing outlives the test.
func (h *harness) stopAll() {
	for _, s := range h.scheds {
		for _, p := range s.all() {
			if err := p.terminate(15 * time.Second); err != nil {
				h.logf("%v", err)
			}
		}
	}
	hist, err := readHistory(h.history)
	if err != nil {
		return
	}
	killed := 0
	for pid := range hist.pids {
		if ours(pid, h.history) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed > 0 {
		h.logf("killed %d job processes still alive at the end", killed)
	}
}

// ours reports whether pid is a job process of this harness (its
// environment names our history file), so a reused pid is never killed.
func ours(pid int, history string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	return bytes.Contains(env, []byte(envHistory+"="+history+"\x00"))
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func runOut(bin string, args ...string) (string, error) {
	var b bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return strings.TrimSpace(b.String()), err
}
