package cli

// Commands for the e2e_*.txtar scripts, which run a real `talon serve`.
// A script starts the server through sh so that its output lands in files
// it can read while the server runs (testscript keeps a background
// command's output in memory until `wait`), and `exec` makes the server
// the process testscript signals:
//
//	exec sh -c 'exec talon serve --listen 127.0.0.1:0 --schedule s.yaml --state sqlite:state.db >srv.out 2>srv.err' &srv&
//	waitserving srv.out
//
// Port 0 lets the kernel choose, so scripts never race for a port; the
// server prints the address it got. Nothing here sleeps for the
// scheduler: every wait polls for the condition and gives up after a
// bounded time, printing what it saw.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/tlscert"
	"github.com/talonhq/talon/internal/view"
)

// pollEvery is how often the e2e waits look again.
const pollEvery = 20 * time.Millisecond

// timeoutArg reads the optional TIMEOUT argument at args[i].
func timeoutArg(ts *testscript.TestScript, cmd string, args []string, i int, def time.Duration) time.Duration {
	if len(args) <= i {
		return def
	}
	d, err := time.ParseDuration(args[i])
	if err != nil || d <= 0 {
		ts.Fatalf("%s: timeout %q: want a duration like 5s", cmd, args[i])
	}
	return d
}

// poll calls f until it reports done or timeout passes; it returns f's
// last error on timeout.
func poll(timeout time.Duration, f func() (done bool, err error)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		done, err := f()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("condition not met")
			}
			return err
		}
		<-tick.C
	}
}

var servingLine = regexp.MustCompile(`(?m)^talon: serving (\S+)$`)

// cmdWaitServing is `waitserving FILE [TIMEOUT]`: it waits for the line
// "talon: serving URL" in FILE (a server's stdout), sets $URL and
// $TALON_URL to that URL, and waits until the server answers its health
// check. On timeout it prints FILE and, for X.out, X.err.
func cmdWaitServing(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitserving FILE [TIMEOUT]")
	}
	file := ts.MkAbs(args[0])
	timeout := timeoutArg(ts, "waitserving", args, 1, 20*time.Second)
	start := time.Now()
	var u string
	err := poll(timeout, func() (bool, error) {
		b, err := os.ReadFile(file)
		if m := servingLine.FindSubmatch(b); m != nil {
			u = string(m[1])
			return true, nil
		}
		return false, err
	})
	if err != nil {
		ts.Fatalf("waitserving: no \"talon: serving URL\" line in %s after %v (%v)%s", args[0], timeout, err, serverOutput(file))
	}
	ts.Setenv("URL", u)
	ts.Setenv("TALON_URL", u)
	if err := waitReady(u, ts.Getenv("TALON_CA"), max(timeout-time.Since(start), time.Second)); err != nil {
		ts.Fatalf("%v%s", err, serverOutput(file))
	}
	ts.Logf("server at %s", u)
}

// serverOutput is what a server wrote, for a failure message.
func serverOutput(outFile string) string {
	var b strings.Builder
	files := []string{outFile}
	if base, ok := strings.CutSuffix(outFile, ".out"); ok {
		files = append(files, base+".err")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s ---\n%s", filepath.Base(f), data)
	}
	return b.String()
}

// cmdWaitLog is `waitlog FILE REGEXP [TIMEOUT]`: it waits until a line of
// FILE (say, a server's log) matches REGEXP, for what a server only says
// in its log, like the outcome of a SIGHUP.
func cmdWaitLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitlog FILE REGEXP [TIMEOUT]")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	if err != nil {
		ts.Fatalf("waitlog: %v", err)
	}
	file := ts.MkAbs(args[0])
	timeout := timeoutArg(ts, "waitlog", args, 2, 10*time.Second)
	var data []byte
	err = poll(timeout, func() (bool, error) {
		var err error
		data, err = os.ReadFile(file)
		return re.Match(data), err
	})
	if err != nil {
		ts.Fatalf("waitlog: no line of %s matches %q after %v; it holds:\n%s", args[0], args[1], timeout, data)
	}
}

// client is an API client of the script's $TALON_URL, with the token of
// $TALON_TOKEN.
func client(ts *testscript.TestScript) *api.Client {
	u := ts.Getenv("TALON_URL")
	if u == "" {
		ts.Fatalf("no $TALON_URL: run waitserving first")
	}
	hc, err := httpClient(ts.Getenv("TALON_CA"), 2*time.Second)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	c := api.NewClient(u, hc)
	c.Token = ts.Getenv("TALON_TOKEN")
	return c
}

// httpClient is an HTTP client with a timeout that trusts caFile ("":
// the system's roots only).
func httpClient(caFile string, timeout time.Duration) (*http.Client, error) {
	cfg, err := tlscert.ClientConfig(caFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// cmdGenCert is `gencert`: it writes a CA (ca.pem) and a server
// certificate for 127.0.0.1 it signed (server.pem, server-key.pem) into
// the script's directory, for scripts that serve over TLS.
func cmdGenCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: gencert")
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			ts.Fatalf("gencert: %v", err)
		}
		return k
	}
	caKey, srvKey := newKey(), newKey()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "talon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		ts.Fatalf("gencert: %v", err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "talon"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		ts.Fatalf("gencert: %v", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		ts.Fatalf("gencert: %v", err)
	}
	for name, b := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: srvDER},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(ts.MkAbs(name), pem.EncodeToMemory(b), 0o600); err != nil {
			ts.Fatalf("gencert: %v", err)
		}
	}
}

// findRun resolves a run selector: a run id, or a job name meaning that
// job's newest run. It reports found false while a job has no run yet.
func findRun(ctx context.Context, c *api.Client, sel string) (d view.RunDetail, found bool, err error) {
	id, err := strconv.ParseInt(sel, 10, 64)
	if err != nil {
		runs, err := c.Runs(ctx, view.RunFilter{Job: sel, Limit: 1})
		if err != nil || len(runs) == 0 {
			return d, false, err
		}
		id = runs[0].ID
	}
	d, err = c.Run(ctx, id)
	var te *talon.Error
	if errors.As(err, &te) && te.Code == talon.ENOTFOUND {
		return d, false, err
	}
	return d, err == nil, err
}

func runJSON(d view.RunDetail) string {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// cmdWaitRun is `waitrun RUN STATE [TIMEOUT]`: it polls the API until the
// run is in STATE and sets $RUN to its id. RUN is a run id or a job name
// (that job's newest run). It fails at once if the run ends in another
// state, and on timeout; either way it prints the run with its decisions
// and history.
func cmdWaitRun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitrun RUN STATE [TIMEOUT]")
	}
	want := talon.State(args[1])
	if !want.Valid() {
		ts.Fatalf("waitrun: unknown state %q", args[1])
	}
	timeout := timeoutArg(ts, "waitrun", args, 2, 10*time.Second)
	c := client(ts)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
	defer cancel()
	var last view.RunDetail
	var ended bool
	err := poll(timeout, func() (bool, error) {
		d, found, err := findRun(ctx, c, args[0])
		if !found {
			return false, err
		}
		last = d
		ended = d.State.Terminal() && d.State != want
		return d.State == want || ended, nil
	})
	switch {
	case ended:
		ts.Fatalf("waitrun: run %d ended %s, want %s:\n%s", last.ID, last.State, want, runJSON(last))
	case err != nil && last.ID == 0:
		ts.Fatalf("waitrun: no run %s after %v: %v", args[0], timeout, err)
	case err != nil:
		ts.Fatalf("waitrun: run %d is %s after %v, want %s:\n%s", last.ID, last.State, timeout, want, runJSON(last))
	}
	ts.Setenv("RUN", strconv.FormatInt(last.ID, 10))
	ts.Logf("run %d (%s %s) is %s", last.ID, last.Job, last.Period, last.State)
}

// cmdWithin is `within DURATION RUN.FIELD RUN.FIELD`: the second instant
// is at or after the first and less than DURATION later. RUN is a run id
// or a job name (its newest run); FIELD is created, started or finished.
// It measures, for example, how soon a dependent started after its
// upstream finished.
func cmdWithin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: within DURATION RUN.FIELD RUN.FIELD")
	}
	limit, err := time.ParseDuration(args[0])
	if err != nil {
		ts.Fatalf("within: %v", err)
	}
	c := client(ts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	instant := func(arg string) time.Time {
		sel, field, ok := strings.Cut(arg, ".")
		if !ok {
			ts.Fatalf("within: %q: want RUN.FIELD", arg)
		}
		d, found, err := findRun(ctx, c, sel)
		if !found {
			ts.Fatalf("within: run %s: %v", sel, err)
		}
		var t *time.Time
		switch field {
		case "created":
			t = &d.Created
		case "started":
			t = d.Started
		case "finished":
			t = d.Finished
		default:
			ts.Fatalf("within: field %q: want created, started or finished", field)
		}
		if t == nil || t.IsZero() {
			ts.Fatalf("within: run %d has no %s time:\n%s", d.ID, field, runJSON(d))
		}
		return *t
	}
	a, b := instant(args[1]), instant(args[2])
	gap := b.Sub(a)
	ts.Logf("%s − %s = %v", args[2], args[1], gap)
	if gap < 0 || gap >= limit {
		ts.Fatalf("within: %s (%s) − %s (%s) = %v, want in [0, %v)", args[2], b.Format(time.RFC3339Nano), args[1], a.Format(time.RFC3339Nano), gap, limit)
	}
}

// scriptEnvKeys are the variables `exits` passes from the script's
// environment; testscript does not expose all of it.
var scriptEnvKeys = []string{"PATH", "HOME", "TMPDIR", "WORK", "TZ", "USER", "TALON_URL", "TALON_TOKEN", "TALON_TOKEN_FILE", "TALON_CA", "PG_URL"}

// cmdExits is `exits CODE PROG [ARGS...]`: it runs PROG like exec does
// and fails unless it exits with CODE; its output becomes stdout and
// stderr for the checks that follow. testscript's `! exec` accepts any
// failure, but users script against talon's codes (1 error, 2 usage).
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: code %q: %v", args[0], err)
	}
	prog := args[1]
	if filepath.Base(prog) == prog {
		if lp, err := lookPath(prog, ts.Getenv("PATH")); err == nil {
			prog = lp
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args[2:]...)
	cmd.Dir = ts.MkAbs(".")
	env := os.Environ()
	for _, k := range scriptEnvKeys {
		env = append(env, k+"="+ts.Getenv(k))
	}
	cmd.Env = env
	cmd.Stdout = ts.Stdout()
	cmd.Stderr = ts.Stderr()
	err = cmd.Run()
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("exits: %s exited %d, want %d", args[1], got, want)
	}
}

func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH", name)
}

// cmdSignal is `signal SIG`: it sends SIG (HUP, INT or TERM) to every
// background command still running; testscript's kill knows only INT
// and KILL. Scripts use it with one server in the background.
func cmdSignal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: signal HUP|INT|TERM")
	}
	sig, ok := map[string]syscall.Signal{"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "TERM": syscall.SIGTERM}[args[0]]
	if !ok {
		ts.Fatalf("signal: unknown signal %q", args[0])
	}
	n := 0
	for _, cmd := range ts.BackgroundCmds() {
		if cmd.Process == nil {
			continue
		}
		if err := cmd.Process.Signal(sig); err == nil {
			n++
		} else if !errors.Is(err, os.ErrProcessDone) {
			ts.Fatalf("signal: pid %d: %v", cmd.Process.Pid, err)
		}
	}
	if n == 0 {
		ts.Fatalf("signal: no background command is running")
	}
}

var schemaSeq atomic.Int64

// pgSchemaURL returns base with a search_path naming a schema of its own
// for one script; the store creates it on first use, and it is dropped
// when the script ends.
func pgSchemaURL(env *testscript.Env, base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("TALON_TEST_POSTGRES: %w", err)
	}
	schema := fmt.Sprintf("talon_e2e_%x_%d", time.Now().UnixNano(), schemaSeq.Add(1))
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	env.Defer(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return u.String(), nil
}
