package cli

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/talontest"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/view"
)

// BenchmarkAPIUnderLoad is the API's load figure: a real `talon serve`
// (the binary, built for the benchmark and run as its own process, so
// the load generator does not share its CPU time nor its heap, and the
// local executor's supervisor is the real talon; SQLite, local executor)
// schedules 1,000 jobs, each fired once a
// minute by a seconds cron spread over the minute, while a client sends
// a bounded number of mixed reads and writes at a fixed rate and 50
// clients follow the event stream. It reports read and write latency
// (p50, p99) and the scheduling lag of time-triggered runs (fire time to
// start, p99 and max). The request count is bounded, not b.N:
//
//	go test -run '^$' -bench APIUnderLoad -benchtime 1x ./internal/cli/
//	go test -run '^$' -bench APIUnderLoad -benchtime 1x ./internal/cli/ -load.duration 10s
//
// The defaults are the issue's: 200 requests/s for 60 s, 50 subscribers;
// a fifth of the requests are triggers, whose runs wait for an artifact
// unless -load.run.
func BenchmarkAPIUnderLoad(b *testing.B) {
	const jobs = 1000
	var sb strings.Builder
	sb.WriteString("jobs:\n")
	for i := range jobs {
		fmt.Fprintf(&sb, "  j%04d:\n    period: daily\n    poll: 1h\n    schedule: \"%d * * * * *\"\n    command: [\"true\"]\n", i, i%60)
	}
	// The written runs wait for inputs that never come (an artifact): the
	// writes measure the API and the store, the 1,000 jobs the local
	// executor. Triggered runs that all ran would add 40 local processes
	// a second to the 17 of the jobs, which is the local executor's
	// throughput, not the API's: -load.run makes them run to measure that.
	if *loadRun {
		sb.WriteString("  ext:\n    period: daily\n    poll: 1h\n    command: [\"true\"]\n")
	} else {
		sb.WriteString("  ext:\n    period: daily\n    poll: 1h\n    command: [\"true\"]\n    constraints: {artifact: \"file:///never/{{period}}\"}\n")
	}
	srv := serveBinary(b, sb.String())
	ctx := b.Context()
	hc := &http.Client{Timeout: 30 * time.Second}

	// Subscribers: each reads the stream until the test ends and counts
	// the events it got.
	var events atomic.Int64
	var subErr atomic.Value
	var subs sync.WaitGroup
	for range *loadSubscribers {
		subs.Add(1)
		go func() {
			defer subs.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/api/v1/events", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := (&http.Client{}).Do(req)
			if err != nil {
				if ctx.Err() == nil {
					subErr.Store(err)
				}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(resp.Body)
				subErr.Store(fmt.Errorf("events: %s %s", resp.Status, body))
				return
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "id:") {
					events.Add(1)
				}
			}
		}()
	}

	// The mixed requests: 80 % reads of the kinds a dashboard and scripts
	// make, 20 % triggers.
	type sample struct {
		write bool
		d     time.Duration
	}
	total := int(float64(*loadRPS) * loadDuration.Seconds())
	samples := make(chan sample, total)
	var failures atomic.Int64
	var firstErr atomic.Value
	tick := time.NewTicker(time.Second / time.Duration(*loadRPS))
	defer tick.Stop()
	var inflight sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range total {
		<-tick.C
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			var method, path string
			var body []byte
			switch i % 10 {
			case 0, 5:
				method, path = http.MethodPost, "/api/v1/jobs/ext/trigger"
				body = []byte(fmt.Sprintf(`{"key":"load-%d"}`, i))
			case 1:
				method, path = http.MethodGet, "/api/v1/jobs"
			case 2, 6:
				method, path = http.MethodGet, "/api/v1/runs/"+fmt.Sprint(1+i%50)
			case 3:
				method, path = http.MethodGet, "/api/v1/periods?limit=20"
			case 4:
				method, path = http.MethodGet, "/api/v1/resources"
			default:
				method, path = http.MethodGet, "/api/v1/runs?limit=50"
			}
			req, _ := http.NewRequestWithContext(ctx, method, srv.url+path, bytes.NewReader(body))
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
					err = fmt.Errorf("%s %s: %s", method, path, resp.Status)
				}
			}
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			samples <- sample{write: method == http.MethodPost, d: time.Since(t0)}
		}()
	}
	inflight.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(samples)

	var reads, writes []time.Duration
	for s := range samples {
		if s.write {
			writes = append(writes, s.d)
		} else {
			reads = append(reads, s.d)
		}
	}
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatalf("%d of %d requests failed; first: %v", failures.Load(), total, err)
	}
	if err, _ := subErr.Load().(error); err != nil {
		b.Fatalf("a subscriber failed: %v", err)
	}

	// Scheduling lag: time-triggered runs, from their fire time to their
	// start, over every run that started during the load.
	var lags []time.Duration
	for before := int64(0); ; {
		runs, err := srv.client.Runs(ctx, view.RunFilter{Limit: 1000, BeforeID: before})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range runs {
			if r.Job != "ext" && !r.FireTime.IsZero() && r.Started != nil && r.FireTime.After(start) {
				lags = append(lags, r.Started.Sub(r.FireTime))
			}
		}
		if len(runs) < 1000 {
			break
		}
		before = runs[len(runs)-1].ID
	}
	if len(lags) == 0 {
		b.Fatalf("no time-triggered run started during the load")
	}

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(reads)+len(writes))/elapsed.Seconds(), "req/s")
	b.ReportMetric(ms(talontest.Percentile(reads, 50)), "read-p50-ms")
	b.ReportMetric(ms(talontest.Percentile(reads, 99)), "read-p99-ms")
	b.ReportMetric(ms(talontest.Percentile(writes, 50)), "write-p50-ms")
	b.ReportMetric(ms(talontest.Percentile(writes, 99)), "write-p99-ms")
	b.ReportMetric(ms(talontest.Percentile(lags, 99)), "lag-p99-ms")
	b.ReportMetric(ms(talontest.Percentile(lags, 100)), "lag-max-ms")
	b.ReportMetric(float64(len(lags)), "timed-runs")
	b.ReportMetric(float64(events.Load())/float64(max(1, *loadSubscribers)), "events/sub")
}

var (
	loadDuration    = flag.Duration("load.duration", time.Minute, "BenchmarkAPIUnderLoad: how long the load lasts")
	loadRPS         = flag.Int("load.rps", 200, "BenchmarkAPIUnderLoad: requests per second")
	loadRun         = flag.Bool("load.run", false, "BenchmarkAPIUnderLoad: the triggered runs run (local processes) rather than wait for an artifact")
	loadSubscribers = flag.Int("load.subscribers", 50, "BenchmarkAPIUnderLoad: event-stream subscribers")
)

// serveBinary builds talon and starts `talon serve` with the schedule
// text sched in a fresh directory; it stops when the benchmark ends.
func serveBinary(b *testing.B, sched string) *servedTalon {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "talon")
	build := exec.Command("go", "build", "-o", bin, "github.com/talonhq/talon/cmd/talon")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build talon: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(sched), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--schedule", "s.yaml", "--state", "sqlite:state.db", "--logs", "logs")
	cmd.Dir = dir
	stderr := &syncBuf{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			b.Errorf("talon serve did not stop; its log:\n%s", stderr.String())
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "talon: serving "); ok {
				urls <- u
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case u := <-urls:
		return &servedTalon{dir: dir, url: u, client: api.NewClient(u, nil), stderr: stderr}
	case <-time.After(30 * time.Second):
		b.Fatalf("talon serve did not start; its log:\n%s", stderr.String())
	}
	return nil
}
