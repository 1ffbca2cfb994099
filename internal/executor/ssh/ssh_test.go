package ssh_test

import (
	"bufio"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/executortest"
	"github.com/talonhq/talon/internal/executor/ssh"
)

// sshd is the test server scripts/sshd starts, as its env file says.
type sshd struct {
	Addr, User, Key, KnownHosts string
	err                         error
}

var (
	serverOnce sync.Once
	server     sshd
)

// testServer reads $TALON_SSH_DIR/env (default /tmp/talon-ssh/env),
// written by scripts/sshd, and checks that the server answers.
func testServer() sshd {
	serverOnce.Do(func() {
		dir := os.Getenv("TALON_SSH_DIR")
		if dir == "" {
			dir = "/tmp/talon-ssh"
		}
		f, err := os.Open(filepath.Join(dir, "env"))
		if err != nil {
			server.err = err
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "=")
			switch k {
			case "TALON_TEST_SSH_ADDR":
				server.Addr = v
			case "TALON_TEST_SSH_USER":
				server.User = v
			case "TALON_TEST_SSH_KEY":
				server.Key = v
			case "TALON_TEST_SSH_KNOWN_HOSTS":
				server.KnownHosts = v
			}
		}
		if server.Addr == "" || server.User == "" || server.Key == "" {
			server.err = os.ErrInvalid
			return
		}
		if out, err := server.ssh("echo", "ok"); err != nil || strings.TrimSpace(string(out)) != "ok" {
			server.err = err
			if err == nil {
				server.err = os.ErrInvalid
			}
		}
	})
	return server
}

// needServer skips the test without the server, or fails it under CI.
func needServer(t testing.TB) sshd {
	t.Helper()
	s := testServer()
	if s.err != nil {
		msg := "no test sshd (" + s.err.Error() + "): run scripts/sshd"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so its absence fails the test")
		}
		t.Skip(msg)
	}
	return s
}

// ssh runs a command on the test server with the OpenSSH client.
func (s sshd) ssh(args ...string) ([]byte, error) {
	host, port, _ := strings.Cut(s.Addr, ":")
	cmd := exec.Command("ssh", append([]string{"-p", port, "-i", s.Key,
		"-o", "UserKnownHostsFile=" + s.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
		s.User + "@" + host}, args...)...)
	return cmd.Output()
}

func (s sshd) settings() ssh.Settings {
	return ssh.Settings{User: s.User, KeyFile: s.Key, KnownHosts: s.KnownHosts, Grace: 200 * time.Millisecond}
}

var conformance = executortest.Backend{
	New: func() executor.Executor {
		return ssh.New(testServer().settings(), nil)
	},
	Command: executortest.ShellCommand,
	Prepare: func(s *executor.Spec) {
		s.Job.Executor = "ssh"
		s.Job.Host = testServer().Addr
	},
	Left: func(t *testing.T, marker string) []string {
		t.Helper()
		out, err := needServer(t).ssh("ps", "-eo", "pid=,stat=,args=")
		if err != nil {
			t.Fatalf("ps on the host: %v", err)
		}
		return executortest.PsLeft(out, marker)
	},
}

func TestMain(m *testing.M) { executortest.Main(m, conformance) }

func TestConformance(t *testing.T) {
	needServer(t)
	executortest.Run(t, conformance)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// BenchmarkDispatchToStart: dispatch → process started on the loopback
// sshd (p50/p99), with the executor's connection already open after the
// first run, as it stays open between a host's runs.
func BenchmarkDispatchToStart(b *testing.B) {
	needServer(b)
	executortest.BenchStart(b, conformance)
}
