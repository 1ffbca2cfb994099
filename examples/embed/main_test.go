package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/talontest"
)

const bound = 60 * time.Second

// stores runs f against SQLite and, when TALON_TEST_POSTGRES is set (or
// CI=true, where its absence fails), PostgreSQL.
func stores(t *testing.T, f func(t *testing.T, state string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "embed.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, talontest.PostgresURL(t)) })
}

// TestOnce runs the example as `go run ./examples/embed -once` does: it
// triggers the digest, which its Go function does item by item, the
// archive follows it, and the service exits cleanly. Twice on one store:
// a second start finds the first one's state.
func TestOnce(t *testing.T) {
	stores(t, func(t *testing.T, state string) {
		logs := t.TempDir()
		for round := 1; round <= 2; round++ {
			var stdout, stderr syncBuf
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			err := run(ctx, []string{"-once", "-state", state, "-listen", "127.0.0.1:0", "-logs", logs}, &stdout, &stderr)
			cancel()
			if err != nil {
				t.Fatalf("round %d: %v\n%s", round, err, stderr.String())
			}
			want := regexp.MustCompile(`(?m)^run \d+: digest daily/\d{4}-\d\d-\d\d: succeeded\nrun \d+: archive daily/\d{4}-\d\d-\d\d: succeeded\n$`)
			if !want.MatchString(stdout.String()) {
				t.Errorf("round %d: stdout:\n%s\nstderr:\n%s", round, stdout.String(), stderr.String())
			}
		}
		// The digest's function wrote its log, item by item.
		data, err := os.ReadFile(filepath.Join(logs, "digest", "1.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "item 5 of 5\n") {
			t.Errorf("digest's log:\n%s", data)
		}
	})
}

// TestServe runs the service until it is told to stop: its own route
// and Talon's API answer on the one mux, and it stops cleanly.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr syncBuf
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-state", "sqlite:" + filepath.Join(t.TempDir(), "embed.db"), "-listen", "127.0.0.1:0", "-logs", t.TempDir()}, pw, &stderr)
		pw.Close()
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "serving "); ok {
				urls <- u
			}
		}
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("the service ended: %v\n%s", err, stderr.String())
	case <-time.After(bound):
		t.Fatalf("the service did not start:\n%s", stderr.String())
	}
	for path, want := range map[string]string{
		"/hello":          "hello from the service",
		"/api/v1/jobs":    `"name":"digest"`,
		"/api/v1/healthz": "ok",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
	case <-time.After(bound):
		t.Fatal("the service did not stop")
	}
}

// syncBuf is a strings.Builder safe for the service's goroutines.
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
