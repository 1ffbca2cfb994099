package cli

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
)

// servedTalon is a real `talon serve` run in this process on a loopback
// port, over SQLite in a temporary directory.
type servedTalon struct {
	dir    string
	url    string
	client *api.Client
	stderr *syncBuf
}

// serveInProcess starts `talon serve` with the schedule text sched (and
// any extra flags) in a fresh directory, which is also its working
// directory's stand-in: logs and state live under it. The server stops
// when the test ends.
func serveInProcess(t testing.TB, sched string, extra ...string) *servedTalon {
	t.Helper()
	dir := t.TempDir()
	sched = strings.ReplaceAll(sched, "{{DIR}}", strconv.Quote(dir))
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(sched), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuf{}
	done := make(chan int, 1)
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--schedule", filepath.Join(dir, "s.yaml"),
		"--state", "sqlite:" + filepath.Join(dir, "state.db"), "--logs", filepath.Join(dir, "logs")}, extra...)
	go func() {
		done <- Main(ctx, args, pw, stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("talon serve did not stop; its log:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "talon: serving "); ok {
				lines <- u
			}
		}
		io.Copy(io.Discard, pr)
	}()
	var url string
	select {
	case url = <-lines:
	case code := <-done:
		t.Fatalf("talon serve exited with %d:\n%s", code, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("talon serve did not start; its log:\n%s", stderr.String())
	}
	return &servedTalon{dir: dir, url: url, client: api.NewClient(url, nil), stderr: stderr}
}

// waitEnd waits until run id has finished and returns it.
func (s *servedTalon) waitEnd(t testing.TB, id int64) talon.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := s.client.Run(t.Context(), id)
		if err == nil && d.State.Terminal() {
			return d.Run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d did not finish (last: %+v, %v); server log:\n%s", id, d.Run, err, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuf is a strings.Builder safe for the server's goroutines.
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
