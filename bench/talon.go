package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// talonBuild is the talon binary and the engine's test binary, built once
// from the repository so every round measures the same code.
type talonBuild struct {
	root       string // the main module's directory
	bin        string // talon
	engineTest string // the compiled tests of ./internal/engine
}

// buildTalon builds both binaries into dir from the main module at root.
func buildTalon(ctx context.Context, root, dir string) (*talonBuild, error) {
	tb := &talonBuild{root: root, bin: filepath.Join(dir, "talon"), engineTest: filepath.Join(dir, "engine.test")}
	for _, args := range [][]string{
		{"build", "-o", tb.bin, "./cmd/talon"},
		{"test", "-c", "-o", tb.engineTest, "./internal/engine/"},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), root, err, out)
		}
	}
	return tb, nil
}

// benchResult is one result line of `go test -bench`: the benchmark's
// name and its metrics by unit ("ns/op", "runs/s", "ms/hop").
type benchResult struct {
	name    string
	metrics map[string]float64
}

// errNoResult is engineBench's error when no benchmark matched.
var errNoResult = errors.New("engine benchmark printed no result")

// engineBench runs the engine's benchmarks matching pattern against the
// PostgreSQL at pg (each benchmark makes and drops its own schema there)
// and returns their result lines.
func (tb *talonBuild) engineBench(ctx context.Context, pg, pattern, benchtime string) ([]benchResult, error) {
	cmd := exec.CommandContext(ctx, tb.engineTest, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime)
	// go test runs a package's tests in its directory; so does this.
	cmd.Dir = filepath.Join(tb.root, "internal", "engine")
	cmd.Env = append(os.Environ(), "TALON_TEST_POSTGRES="+pg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("engine benchmark %s: %w\n%s", pattern, err, out)
	}
	var res []benchResult
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		r := benchResult{name: f[0], metrics: map[string]float64{}}
		// name, iterations, then value-unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			r.metrics[f[i+1]] = v
		}
		res = append(res, r)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("%w: %s (does it exist in this version?):\n%s", errNoResult, pattern, out)
	}
	return res, nil
}

// server is one `talon serve` process on its own PostgreSQL schema.
type server struct {
	cmd    *exec.Cmd
	url    string
	dir    string
	base   string // PostgreSQL URL without the schema
	schema string
	log    *os.File
	hc     *http.Client
}

// serve starts `talon serve` with the schedule sched on a fresh schema of
// the PostgreSQL at base, listening on a free loopback port. Without an
// auth: section a loopback server lets anyone on the host use the API,
// which is what the harness relies on.
func (tb *talonBuild) serve(ctx context.Context, base, schema, sched string) (*server, error) {
	if err := createSchema(ctx, base, schema); err != nil {
		return nil, err
	}
	state, err := withSearchPath(base, schema)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "talon-bench-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, base: base, schema: schema, hc: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
	if err := os.WriteFile(filepath.Join(dir, "schedule.yaml"), []byte(sched), 0o600); err != nil {
		s.cleanup()
		return nil, err
	}
	if s.log, err = os.Create(filepath.Join(dir, "serve.log")); err != nil {
		s.cleanup()
		return nil, err
	}
	s.cmd = exec.Command(tb.bin, "serve", "--listen", "127.0.0.1:0", "--schedule", "schedule.yaml", "--state", state, "--logs", "logs")
	s.cmd.Dir = dir
	s.cmd.Stderr = s.log
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("start %s serve: %w", tb.bin, err)
	}
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
	case s.url = <-urls:
		return s, nil
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	err = fmt.Errorf("talon serve did not say it was serving within 60 s; its log:\n%s", s.logTail())
	s.stop()
	return nil, err
}

// stop ends the server (SIGTERM, then SIGKILL after 30 s), drops its
// schema and removes its directory.
func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
	s.cleanup()
}

func (s *server) cleanup() {
	if s.log != nil {
		s.log.Close()
	}
	_ = dropSchema(s.base, s.schema)
	_ = os.RemoveAll(s.dir)
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "serve.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// trigger creates a run of job through the API (no idempotency key, so
// every request makes a new run) and returns its id.
func (s *server) trigger(ctx context.Context, job string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/v1/jobs/"+job+"/trigger", strings.NewReader("{}"))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("trigger %s: %w", job, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("trigger %s: %w", job, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("trigger %s: %s: %s", job, resp.Status, bytes.TrimSpace(body))
	}
	var run struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &run); err != nil {
		return 0, fmt.Errorf("trigger %s: answer %q: %w", job, body, err)
	}
	return run.ID, nil
}

// event is what the harness reads of a transition on the event stream.
// Time is the server's stamp of the transition: for a run's end, its
// `finished` time.
type event struct {
	ID   int64     `json:"id"`
	Run  int64     `json:"run"`
	Time time.Time `json:"time"`
	From string    `json:"from"`
	To   string    `json:"to"`
	Job  string    `json:"job"`
	Type string    `json:"type"`
	// Seen is when the harness read the event (the client's clock).
	Seen time.Time `json:"-"`
}

// events follows the transitions of the server's runs from the first
// event on (after=0 replays what the fresh schema holds, so nothing is
// missed however soon the first trigger comes), reconnecting with the
// last id if the server drops the stream. The channel closes when ctx
// ends; errs gets what stops the stream for good.
func (s *server) events(ctx context.Context) (<-chan event, <-chan error) {
	ch := make(chan event, 1<<16)
	errs := make(chan error, 1)
	go func() {
		defer close(ch)
		var last int64
		for ctx.Err() == nil {
			err := s.readEvents(ctx, &last, ch)
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, errDropped) && !errors.Is(err, io.EOF) {
				errs <- err
				return
			}
		}
	}()
	return ch, errs
}

var errDropped = errors.New("dropped by the server")

func (s *server) readEvents(ctx context.Context, last *int64, ch chan<- event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/api/v1/events?type=transition&after="+strconv.FormatInt(*last, 10), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("event stream: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	br := bufio.NewReaderSize(resp.Body, 1<<16)
	var typ string
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if typ == "error" {
				return errDropped
			}
			if len(data) > 0 {
				var e event
				if err := json.Unmarshal(data, &e); err != nil {
					return fmt.Errorf("event stream: event %q: %w", data, err)
				}
				e.Seen = time.Now()
				*last = e.ID
				ch <- e
			}
			typ, data = "", data[:0]
		case bytes.HasPrefix(line, []byte("event:")):
			typ = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimSpace(line[len("data:"):])...)
		case bytes.HasPrefix(line, []byte("id:")):
			if id, err := strconv.ParseInt(string(bytes.TrimSpace(line[len("id:"):])), 10, 64); err == nil && id > *last {
				*last = id
			}
		}
	}
}

// load is the outcome of creating n runs or jobs and waiting for all of
// them to finish.
type load struct {
	n       int
	elapsed time.Duration   // first create request → last finish seen by the harness
	lat     []time.Duration // each one's create request → its finish
	seen    []time.Duration // each one's create request → the harness reading that it finished
}

func (l load) rate() float64 { return float64(l.n) / l.elapsed.Seconds() }

// talonTriggers starts `talon serve` with sched, has clients goroutines
// trigger job n times in all, each request after the previous one of
// that client answered, and waits on the event stream until every run
// has succeeded. A run's latency is from just before its trigger request
// to its `finished` stamp.
func talonTriggers(ctx context.Context, tb *talonBuild, base, schema, sched, job string, clients, n int, timeout time.Duration) (load, error) {
	srv, err := tb.serve(ctx, base, schema, sched)
	if err != nil {
		return load{}, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	evs, evErr := srv.events(ctx)

	type sent struct {
		id int64
		at time.Time
	}
	sentc := make(chan sent, n)
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	began := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += clients {
				at := time.Now()
				id, err := srv.trigger(ctx, job)
				if err != nil {
					errc <- err
					return
				}
				sentc <- sent{id, at}
			}
		}()
	}

	submitted := make(map[int64]time.Time, n)
	finished := make(map[int64]event, n)
	var last time.Time
	for len(finished) < n || len(submitted) < n {
		select {
		case s := <-sentc:
			submitted[s.id] = s.at
		case e, ok := <-evs:
			if !ok {
				return load{}, fmt.Errorf("talon: %d of %d runs finished after %s (timeout %s); server log:\n%s", len(finished), n, time.Since(began).Round(time.Millisecond), timeout, srv.logTail())
			}
			switch e.To {
			case "succeeded":
				finished[e.Run] = e
				last = e.Seen
			case "failed", "skipped":
				return load{}, fmt.Errorf("talon: run %d of job %s ended %s; server log:\n%s", e.Run, e.Job, e.To, srv.logTail())
			}
		case err := <-errc:
			return load{}, err
		case err := <-evErr:
			return load{}, err
		}
	}
	wg.Wait()
	l := load{n: n, elapsed: last.Sub(began)}
	for id, at := range submitted {
		e, ok := finished[id]
		if !ok {
			return load{}, fmt.Errorf("talon: run %d was triggered but never seen finishing", id)
		}
		l.lat = append(l.lat, e.Time.Sub(at))
		l.seen = append(l.seen, e.Seen.Sub(at))
	}
	return l, nil
}

// chain is what a dependency chain measured: each hop's gap from one
// link's start to the next one's, and from one link's end to the next
// one's.
type chain struct {
	startToStart   []time.Duration
	finishToFinish []time.Duration
}

// talonChain starts `talon serve` with a chain of n jobs, each triggered
// by the success of the one before (and constrained to follow it, as
// BenchmarkChain1000's are), triggers the first over the API and reads
// each link's start (ready→running) and end (→succeeded) stamps from the
// event stream.
func talonChain(ctx context.Context, tb *talonBuild, base, schema string, n int, timeout time.Duration) (chain, error) {
	var sb strings.Builder
	sb.WriteString("jobs:\n  c0:\n    period: daily\n    executor: inprocess\n    command: [noop]\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&sb, "  c%d:\n    period: daily\n    triggers: [{after: c%d}]\n    constraints: {after: [c%d]}\n    executor: inprocess\n    command: [noop]\n", i, i-1, i-1)
	}
	srv, err := tb.serve(ctx, base, schema, sb.String())
	if err != nil {
		return chain{}, err
	}
	defer srv.stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	evs, evErr := srv.events(ctx)
	if _, err := srv.trigger(ctx, "c0"); err != nil {
		return chain{}, err
	}
	ends := make([]time.Time, n)
	done := 0
	for done < n {
		select {
		case e, ok := <-evs:
			if !ok {
				return chain{}, fmt.Errorf("talon chain: %d of %d links finished (timeout %s); server log:\n%s", done, n, timeout, srv.logTail())
			}
			i, err := strconv.Atoi(strings.TrimPrefix(e.Job, "c"))
			if err != nil || i < 0 || i >= n {
				return chain{}, fmt.Errorf("talon chain: event of unknown job %q", e.Job)
			}
			switch e.To {
			case "succeeded":
				ends[i] = e.Time
				done++
			case "failed", "skipped":
				return chain{}, fmt.Errorf("talon chain: run %d of %s ended %s; server log:\n%s", e.Run, e.Job, e.To, srv.logTail())
			}
		case err := <-evErr:
			return chain{}, err
		}
	}
	return chain{finishToFinish: diffs(ends)}, nil
}
