package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/ssh"
)

func spec(t *testing.T, argv ...string) executor.Spec {
	return executor.Spec{
		Run:     talon.Run{ID: 4242, Job: "load", Period: "daily/2026-11-26"},
		Job:     &talon.Job{Name: "load", Executor: "ssh", Host: testServer().Addr, Command: argv},
		Env:     []string{"TALON_RUN_ID=4242"},
		LogPath: filepath.Join(t.TempDir(), "4242.log"),
	}
}

func wait(t *testing.T, p executor.Process) executor.Outcome {
	t.Helper()
	ch := make(chan executor.Outcome, 1)
	go func() { ch <- p.Wait() }()
	select {
	case o := <-ch:
		return o
	case <-time.After(time.Minute):
		p.Cancel(errors.New("test gave up"))
		t.Fatalf("run %s did not end", p.Handle())
	}
	return executor.Outcome{}
}

func newExecutor(t *testing.T, s ssh.Settings) *ssh.Executor {
	ex := ssh.New(s, testLogger(t))
	t.Cleanup(func() { ex.Close() })
	return ex
}

// TestHostKeys: an unknown host, or one whose key changed, is refused
// with an error that says how to add its key.
func TestHostKeys(t *testing.T) {
	srv := needServer(t)
	hostKey, err := os.ReadFile(srv.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	other := "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmmZ4yQhOEPUJ5gVtkTfszOCpS6jpq2OEmsPD7X0MvX\n"
	tests := []struct {
		name       string
		knownHosts string
		want       string
	}{
		{name: "unknown", knownHosts: "", want: "host 127.0.0.1:2222 is not in known_hosts %s: check its key's fingerprint with the host's owner, then add it: ssh-keyscan -p 2222 127.0.0.1 >> %s"},
		{name: "changed", knownHosts: other, want: "the key of host 127.0.0.1:2222 does NOT match known_hosts %s:1"},
		{name: "known", knownHosts: string(hostKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(tt.knownHosts), 0o600); err != nil {
				t.Fatal(err)
			}
			s := srv.settings()
			s.KnownHosts = kh
			p, err := newExecutor(t, s).Start(t.Context(), spec(t, "true"))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				if o := wait(t, p); !o.Succeeded {
					t.Errorf("outcome = %+v", o)
				}
				return
			}
			if err == nil {
				wait(t, p)
				t.Fatal("Start succeeded, want a host key error")
			}
			want := strings.ReplaceAll(tt.want, "%s", kh)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error = %q\nwant it to contain %q", err, want)
			}
		})
	}
}

// TestTarget: a run goes to the address of the hosts/... resource it
// holds, else to the job's host; without either, or without an address,
// it does not start.
func TestTarget(t *testing.T) {
	srv := needServer(t)
	ex := newExecutor(t, srv.settings())
	s := spec(t, "sh", "-c", `echo "$TALON_RUN_ID on $(id -un)"`)
	s.Job.Host = "unused.invalid"
	s.Resources = []executor.Resource{
		{Path: "db/prod/connections", Units: 1},
		{Path: "hosts/linux/h01", Units: 1, Attributes: map[string]string{"address": srv.Addr}},
	}
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if o := wait(t, p); !o.Succeeded {
		t.Fatalf("outcome = %+v", o)
	}
	if b, _ := os.ReadFile(s.LogPath); string(b) != "4242 on "+srv.User+"\n" {
		t.Errorf("log = %q", b)
	}
	if !strings.HasPrefix(p.Handle(), "ssh:"+srv.User+"@"+srv.Addr+" run:4242-") {
		t.Errorf("handle = %q", p.Handle())
	}

	tests := []struct {
		name string
		edit func(*executor.Spec)
		want string
	}{
		{name: "no host", edit: func(s *executor.Spec) { s.Job.Host = "" },
			want: "start load: job load has no host: set host: HOST, or request a hosts/... resource with an address attribute"},
		{name: "no address", edit: func(s *executor.Spec) {
			s.Resources = []executor.Resource{{Path: "hosts/linux/h02", Units: 1}}
		}, want: "start load: resource hosts/linux/h02 has no address attribute: add attributes: {address: HOST[:PORT]} to it"},
		{name: "no user", edit: func(s *executor.Spec) { s.Job.SSH = &talon.SSHOptions{User: ""} }},
		{name: "refused login", edit: func(s *executor.Spec) { s.Job.SSH = &talon.SSHOptions{User: "talon-no-such-user"} },
			want: "log in to " + srv.Addr + " as talon-no-such-user: not accepted with key_file " + srv.Key},
		{name: "program not found", edit: func(s *executor.Spec) { s.Job.Command = []string{"talon-no-such-program"} },
			want: "start load: program talon-no-such-program not found on " + srv.Addr + " as " + srv.User},
		{name: "directory not found", edit: func(s *executor.Spec) { s.Job.Dir = "/no/such/dir" },
			want: "start load: directory /no/such/dir not found on " + srv.Addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec(t, "true")
			tt.edit(&s)
			p, err := ex.Start(t.Context(), s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				wait(t, p)
				return
			}
			if err == nil {
				wait(t, p)
				t.Fatalf("Start succeeded, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// TestMaxSessionsPerHost: a start beyond the cap waits for a run to end.
func TestMaxSessionsPerHost(t *testing.T) {
	srv := needServer(t)
	s := srv.settings()
	s.MaxSessionsPerHost = 1
	ex := newExecutor(t, s)
	first, err := ex.Start(t.Context(), spec(t, "sleep", "30"))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if p, err := ex.Start(ctx, spec(t, "true")); err == nil {
		wait(t, p)
		t.Fatal("second Start succeeded with max_sessions_per_host 1")
	} else if !strings.Contains(err.Error(), "has max_sessions_per_host (1) runs going") {
		t.Errorf("error = %q", err)
	}
	done := make(chan error, 1)
	go func() {
		p, err := ex.Start(t.Context(), spec(t, "true"))
		if err == nil {
			wait(t, p)
		}
		done <- err
	}()
	first.Cancel(errors.New("make room"))
	wait(t, first)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start after the first run ended: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Start still waiting after the first run ended")
	}
}

// TestDroppedConnection: when the connection to the host breaks mid-run
// (here: the server's side of it is killed), the run re-attaches over a
// new one and its output goes on where it stopped, without a line lost or
// repeated.
func TestDroppedConnection(t *testing.T) {
	srv := needServer(t)
	ex := newExecutor(t, srv.settings())
	s := spec(t, "sh", "-c", `echo one; while [ ! -e "$HOME/.talon/go-$TALON_RUN_ID" ]; do sleep 0.1; done; rm -f "$HOME/.talon/go-$TALON_RUN_ID"; echo two; exit 4`)
	s.Run.ID = time.Now().UnixNano() % 1e9
	s.Env = []string{"TALON_RUN_ID=" + strconv.FormatInt(s.Run.ID, 10)}
	lines := make(chan string, 10)
	s.OnLine = func(l string) { lines <- l }
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-lines:
	case <-time.After(time.Minute):
		t.Fatal("no output")
	}
	killed := killSessions(t)
	t.Logf("killed %d sshd processes", killed)
	if killed == 0 {
		t.Fatal("found no sshd session process to kill")
	}
	// Let the job go on only once the executor had to re-attach: the
	// file appears over a connection of the OpenSSH client.
	if _, err := srv.ssh("touch", ".talon/go-"+strconv.FormatInt(s.Run.ID, 10)); err != nil {
		t.Fatalf("touch: %v", err)
	}
	o := wait(t, p)
	if o.Succeeded || o.ExitCode != 4 || o.Reason != "exit status 4" {
		t.Errorf("outcome = %+v, want exit status 4", o)
	}
	if b, _ := os.ReadFile(s.LogPath); string(b) != "one\ntwo\n" {
		t.Errorf("log = %q, want %q", b, "one\ntwo\n")
	}
}

// killSessions SIGKILLs the test sshd's per-connection processes, so
// every connection to it drops. The listener stays, and so do the shells
// the sessions started.
func killSessions(t *testing.T) int {
	t.Helper()
	n := 0
	for _, pid := range sshdDescendants(t) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// sshdDescendants are the sshd processes under the test sshd's listener
// (whose pid file scripts/sshd keeps).
func sshdDescendants(t *testing.T) []int {
	t.Helper()
	dir := filepath.Dir(testServer().Key)
	b, err := os.ReadFile(filepath.Join(dir, "sshd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	master := strings.TrimSpace(string(b))
	parent := map[string]string{}
	comm := map[string]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.IndexByte(st, '(')
		j := bytes.LastIndexByte(st, ')')
		if i < 0 || j < 0 || j+2 >= len(st) {
			continue
		}
		f := strings.Fields(string(st[j+2:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		parent[e.Name()] = f[1]
		comm[e.Name()] = string(st[i+1 : j])
	}
	under := func(pid string) bool {
		for p := parent[pid]; p != "" && p != "0"; p = parent[p] {
			if p == master {
				return true
			}
		}
		return false
	}
	var out []int
	for pid := range parent {
		if comm[pid] == "sshd" && pid != master && under(pid) {
			id, _ := strconv.Atoi(pid)
			out = append(out, id)
		}
	}
	return out
}

// TestUnreachable: a host that stops answering mid-run (its sshd frozen
// with SIGSTOP, the job itself untouched) is noticed by the keepalives;
// the run cannot re-attach, its lease is no longer renewed, so the
// wrapper on the host stops the job when the lease lapses, and the run
// ends "lost" only after that: a retry never overlaps it.
func TestUnreachable(t *testing.T) {
	srv := needServer(t)
	s := srv.settings()
	s.Lease = 2 * time.Second
	s.Keepalive = 500 * time.Millisecond
	ex := newExecutor(t, s)
	marker := "talon-unreachable-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sp := spec(t, "sh", "-c", `echo ready; while :; do sleep 1; done`, marker)
	ready := make(chan struct{}, 1)
	sp.OnLine = func(string) {
		select {
		case ready <- struct{}{}:
		default:
		}
	}
	p, err := ex.Start(t.Context(), sp)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-ready:
	case <-time.After(time.Minute):
		t.Fatal("no output")
	}
	frozen := signalSSHD(t, syscall.SIGSTOP)
	t.Cleanup(func() {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	begun := time.Now()
	o := wait(t, p)
	took := time.Since(begun)
	for _, pid := range frozen {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	t.Logf("outcome after %s: %+v", took.Round(time.Millisecond), o)
	if o.Succeeded || !strings.HasPrefix(o.Reason, "lost: could not reach "+srv.Addr) {
		t.Errorf("outcome = %+v, want lost", o)
	}
	out, err := srv.ssh("ps", "-eo", "pid=,stat=,args=")
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, marker) && !strings.Contains(l, " Z") {
			t.Errorf("the job still runs after the run was declared lost: %s", l)
		}
	}
}

// signalSSHD sends sig to the test sshd's listener and every sshd process
// under it, and returns their pids.
func signalSSHD(t *testing.T, sig syscall.Signal) []int {
	t.Helper()
	dir := filepath.Dir(testServer().Key)
	b, err := os.ReadFile(filepath.Join(dir, "sshd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	master, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	pids := append(sshdDescendants(t), master)
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
	return pids
}
