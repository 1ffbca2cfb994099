package web_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// served is a real `talon serve` process: the binary built from this
// module, on a loopback port the kernel chose.
type served struct {
	dir, url string
	stderr   *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// talonBinary builds cmd/talon once per test process.
func talonBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "talon-web-test")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "talon")
		out, err := exec.Command("go", "build", "-o", buildBin, "github.com/talonhq/talon/cmd/talon").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build talon: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

// serve starts `talon serve --config talon.yaml` in dir (which holds the
// config) and returns once it prints its address. It stops it at the
// end of the test.
func serve(tb testing.TB, dir string) *served {
	tb.Helper()
	cmd := exec.Command(talonBinary(tb), "serve", "--config", "talon.yaml", "--listen", "127.0.0.1:0")
	cmd.Dir = dir
	stderr := &syncBuf{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			tb.Errorf("talon serve did not stop; its log:\n%s", stderr.String())
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
		return &served{dir: dir, url: u, stderr: stderr}
	case <-time.After(60 * time.Second):
		tb.Fatalf("talon serve did not start; its log:\n%s", stderr.String())
	}
	return nil
}

func sha(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// gridSchedule is a schedule of n daily jobs without triggers, in groups
// of 50, that run `true` when triggered (none is).
func gridSchedule(n int) string {
	var b strings.Builder
	b.WriteString("jobs:\n")
	for i := range n {
		fmt.Fprintf(&b, "  job-%04d:\n    period: daily\n    group: g%02d\n    description: job number %d\n    command: [\"true\"]\n", i, i/50, i)
	}
	return b.String()
}

// seedGrid gives each of the n jobs of gridSchedule a run in each of the
// periods days up to now's, most succeeded, some failed, skipped or
// retried; live of them (the newest) are left running with progress.
func seedGrid(tb testing.TB, st store.Store, n, periods, live int, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	var creates []store.CreateRun
	for d := periods - 1; d >= 0; d-- {
		key := "daily/" + now.AddDate(0, 0, -d).UTC().Format("2006-01-02")
		for i := range n {
			creates = append(creates, store.CreateRun{
				Job: fmt.Sprintf("job-%04d", i), Period: key, Trigger: talon.TriggerAPI,
				Key: fmt.Sprintf("seed-%d-%s", i, key), Executor: "local", Now: now.Add(-time.Duration(d) * 24 * time.Hour),
			})
		}
	}
	for start := 0; start < len(creates); start += 1000 {
		res, err := st.CreateRuns(ctx, creates[start:min(start+1000, len(creates))])
		if err != nil {
			tb.Fatal(err)
		}
		var toReady, toRunning, toEnd, toFail, toSkip []store.Transition
		for j, c := range res {
			idx := start + j
			id := c.Run.ID
			switch {
			case idx >= len(creates)-live:
				toReady = append(toReady, store.Transition{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: now, Owner: "seed"})
				toRunning = append(toRunning, store.Transition{RunID: id, From: []talon.State{talon.StateReady}, To: talon.StateRunning, Now: now, Owner: "seed"})
			case idx%23 == 0:
				toFail = append(toFail, store.Transition{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateFailed, Now: now, Reason: "seeded failure"})
			case idx%31 == 0:
				toSkip = append(toSkip, store.Transition{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateSkipped, Now: now, Reason: "seeded skip"})
			default:
				toReady = append(toReady, store.Transition{RunID: id, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: now, Owner: "seed"})
				toRunning = append(toRunning, store.Transition{RunID: id, From: []talon.State{talon.StateReady}, To: talon.StateRunning, Now: now, Owner: "seed"})
				toEnd = append(toEnd, store.Transition{RunID: id, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Now: now.Add(time.Minute), Reason: "exit status 0"})
			}
		}
		for _, batch := range [][]store.Transition{toFail, toSkip, toReady, toRunning, toEnd} {
			if len(batch) == 0 {
				continue
			}
			if _, err := st.Transition(ctx, batch); err != nil {
				tb.Fatal(err)
			}
		}
	}
	runs, err := st.ListRuns(ctx, store.RunFilter{States: []talon.State{talon.StateRunning}})
	if err != nil {
		tb.Fatal(err)
	}
	for i, r := range runs {
		p := float64(10 + 7*i%90)
		if err := st.SetProgress(ctx, r.ID, talon.Progress{Percent: &p}); err != nil {
			tb.Fatal(err)
		}
	}
}
