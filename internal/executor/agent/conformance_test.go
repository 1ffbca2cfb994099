//go:build linux

package agent_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/api/apitest"
	"github.com/talonhq/talon/internal/executor"
	agentexec "github.com/talonhq/talon/internal/executor/agent"
	"github.com/talonhq/talon/internal/executor/executortest"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
)

// dirEnv names the directory the conformance run shares with the
// subprocess of its restart case: the state store, and the logs the
// server writes.
const dirEnv = "TALON_AGENTTEST_DIR"

// agentName is the real agent every case's runs go to.
const agentName = "ct"

var shared struct {
	once sync.Once
	st   store.Store
	err  error
}

// sharedStore is the store of the directory in dirEnv, opened once per
// process (the test's, or its restart case's scheduler subprocess).
func sharedStore() (store.Store, error) {
	shared.once.Do(func() {
		dir := os.Getenv(dirEnv)
		if dir == "" {
			shared.err = fmt.Errorf("%s is not set", dirEnv)
			return
		}
		shared.st, shared.err = sqlite.Open(context.Background(), filepath.Join(dir, "state.db"))
	})
	return shared.st, shared.err
}

// conformance is the agent executor as the executor suite sees it: each
// case's runs go through the state store to one real `talon agent`
// process on this host (so ps shows what is left of a run), connected to
// a server (the API of role agent over this package's hub) in the test
// process; its output reaches the log the server writes.
var conformance = executortest.Backend{
	New: func() executor.Executor {
		st, err := sharedStore()
		if err != nil {
			panic(err)
		}
		ex, err := agentexec.New(agentexec.Config{Store: st, Poll: 50 * time.Millisecond})
		if err != nil {
			panic(err)
		}
		return ex
	},
	Command: executortest.ShellCommand,
	Prepare: func(s *executor.Spec) {
		if s.Run.Executor != "agent" {
			// The suite's run becomes a run of the store (whose log store
			// knows only its runs); the restart case's subprocess gets it
			// made already.
			st, err := sharedStore()
			if err != nil {
				panic(err)
			}
			cs, err := st.CreateRuns(context.Background(), []store.CreateRun{{Job: s.Run.Job, Period: s.Run.Period,
				Trigger: "api", Key: "conformance-" + strconv.FormatInt(s.Run.ID, 10), Executor: "agent", Now: time.Now()}})
			if err != nil {
				panic(err)
			}
			s.Run = cs[0].Run
			for i, kv := range s.Env {
				if strings.HasPrefix(kv, "TALON_RUN_ID=") {
					s.Env[i] = "TALON_RUN_ID=" + strconv.FormatInt(s.Run.ID, 10)
				}
			}
		}
		s.Resources = []executor.Resource{{Path: store.AgentPath(agentName), Units: 1}}
		s.LogPath = logPath(os.Getenv(dirEnv), s.Run)
	},
	Left: executortest.LocalLeft,
}

func TestMain(m *testing.M) { executortest.Main(m, conformance) }

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(dirEnv, dir) // the restart case's subprocess inherits it
	st, err := sharedStore()
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, st, dir)
	executortest.Run(t, conformance)
}

// startServer serves the agents' protocol from st (its logs under dir)
// and starts a real agent against it, built from this repository.
func startServer(t *testing.T, st store.Store, dir string) {
	t.Helper()
	hub, err := agentexec.New(agentexec.Config{Store: st, Poll: 50 * time.Millisecond,
		LogPath: func(r talon.Run) string { return logPath(dir, r) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	srv := httptest.NewServer(api.NewServer(apitest.New(), discard(), api.WithAgents(hub)))
	t.Cleanup(srv.Close)
	bin := buildTalon(t)
	startAgent(t, bin, srv.URL, agentName, filepath.Join(dir, "agent"), "--slots", "64", "--grace", "200ms")
	waitAgent(t, st, agentName)
}

func buildTalon(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "talon")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/talon")
	cmd.Dir = filepath.Join("..", "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/talon: %v\n%s", err, out)
	}
	return bin
}

// startAgent starts `talon agent` and stops it (SIGTERM, then SIGKILL)
// when the test ends.
func startAgent(t testing.TB, bin, server, name, dir string, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"agent", "--server", server, "--name", name, "--dir", dir}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("agent %s's log:\n%s", name, b)
		}
	})
	return cmd
}

// waitAgent waits, boundedly, until the agent has a live session.
func waitAgent(t testing.TB, st store.Store, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		as, now, err := st.Agents(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Name == name && a.Live(now) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("agent %s did not register within 30s", name)
}
