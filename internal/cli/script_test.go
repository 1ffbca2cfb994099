package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/api/apitest"
	"github.com/talonhq/talon/internal/talontest"
	"github.com/talonhq/talon/internal/view"
)

var update = flag.Bool("update", false, "rewrite the cmp files of testdata/script/*.txtar")

// TestMain makes the test binary double as the talon command, so scripts
// run `exec talon …` in a real process, with real signals and exit codes.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"talon": func() {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// TestScript runs testdata/script/*.txtar. Each script gets:
//   - $FAKE_URL: an API server over an in-memory backend seeded with
//     fixtureRuns, for verbs' output without a scheduler;
//   - $DEAD_URL: an address where nothing listens;
//   - $QUICKSTART: the README's examples/quickstart.yaml;
//   - $PG_URL: a fresh PostgreSQL schema on TALON_TEST_POSTGRES (created
//     by the store on first use, dropped after the script), only when
//     that variable is set;
//   - TZ=UTC and USER=tester, so tables and reasons are stable.
//
// The e2e_*.txtar scripts run a real `talon serve`; see the e2e commands
// below (waitserving, waitrun, within, waitlog, exits).
func TestScript(t *testing.T) {
	pgBase := os.Getenv("TALON_TEST_POSTGRES")
	if pgBase == "" && os.Getenv("CI") == "true" {
		// The PostgreSQL scripts skip themselves without $PG_URL; CI must
		// never pass that way.
		t.Fatalf("TALON_TEST_POSTGRES is not set and CI=true: %s", talontest.HowToPostgres)
	}
	sshd, sshErr := testSSHD()
	if sshErr != nil && os.Getenv("CI") == "true" {
		t.Fatalf("no test sshd (%v) and CI=true: run scripts/sshd", sshErr)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			hs := httptest.NewServer(api.NewServer(fixtureBackend(), slog.New(slog.DiscardHandler)))
			env.Defer(hs.Close)
			dead, err := deadURL()
			if err != nil {
				return err
			}
			env.Setenv("FAKE_URL", hs.URL)
			quick, err := filepath.Abs("../../examples/quickstart.yaml")
			if err != nil {
				return err
			}
			env.Setenv("QUICKSTART", quick)
			env.Setenv("DEAD_URL", dead)
			env.Setenv("TZ", "UTC")
			env.Setenv("USER", "tester")
			// Under -race every talon process would sleep a second on
			// exit, waiting for late race reports; scripts run hundreds
			// of them. A race still fails the process (exit status 66).
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			for k, v := range sshd {
				env.Setenv(k, v)
			}
			if pgBase != "" {
				u, err := pgSchemaURL(env, pgBase)
				if err != nil {
					return err
				}
				env.Setenv("PG_URL", u)
			}
			return nil
		},
		// [postgres] holds when TALON_TEST_POSTGRES is set, so $PG_URL is.
		Condition: func(cond string) (bool, error) {
			if cond == "postgres" {
				return pgBase != "", nil
			}
			// [sshd] holds when scripts/sshd's server answers, so
			// $TALON_TEST_SSH_ADDR and the others are set.
			if cond == "sshd" {
				return sshErr == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitready":   cmdWaitReady,
			"waitserving": cmdWaitServing,
			"waitlog":     cmdWaitLog,
			"waitrun":     cmdWaitRun,
			"within":      cmdWithin,
			"exits":       cmdExits,
			"signal":      cmdSignal,
			"gencert":     cmdGenCert,
		},
	})
}

// cmdWaitReady is `waitready URL [TIMEOUT]`: it polls URL's health until
// it answers 200, for scripts that start `talon serve` in the background.
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! waitready")
	}
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitready URL [TIMEOUT]")
	}
	timeout := 20 * time.Second
	if len(args) == 2 {
		d, err := time.ParseDuration(args[1])
		if err != nil {
			ts.Fatalf("waitready: timeout %q: %v", args[1], err)
		}
		timeout = d
	}
	if err := waitReady(args[0], ts.Getenv("TALON_CA"), timeout); err != nil {
		ts.Fatalf("%v", err)
	}
}

// waitReady polls base's health; caFile, when set, is a CA to trust.
func waitReady(base, caFile string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hc, err := httpClient(caFile, time.Second)
	if err != nil {
		return err
	}
	c := api.NewClient(base, hc)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.Health(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waitready: %s not healthy after %v: %v", base, timeout, err)
		case <-tick.C:
		}
	}
}

// deadURL is an address where nothing listens: a port that was free a
// moment ago.
func deadURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return "http://" + l.Addr().String(), nil
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err) // a typo in a fixture
	}
	return t
}

func ptr[T any](v T) *T { return &v }

// fixtureBackend serves three jobs and three runs: one succeeded, one
// failed, one blocked by its constraints.
func fixtureBackend() *apitest.Backend {
	b := apitest.New(
		view.JobInfo{Name: "extract", Period: "daily", Timezone: "UTC", Executor: "local",
			Triggers: []string{"schedule:0 6 * * *"}, Next: "2026-11-27T06:00:00Z"},
		view.JobInfo{Name: "load-sales", Period: "daily", Calendar: "uk", Timezone: "Europe/London", Executor: "local",
			Triggers: []string{"after:extract"}, Constraints: []string{"after", "not_before"}},
		view.JobInfo{Name: "report", Period: "monthly", Timezone: "UTC", Executor: "local"},
	)
	b.Add(talon.Run{Job: "extract", Period: "daily/2026-11-25", State: talon.StateSucceeded, Executor: "local",
		Trigger: "schedule:0 6 * * *", FireTime: at("2026-11-25T06:00:00Z"), Created: at("2026-11-25T06:00:00Z"),
		Started: ptr(at("2026-11-25T06:00:01Z")), Finished: ptr(at("2026-11-25T06:02:31Z")), Reason: "exit status 0",
		Progress:  &talon.Progress{Percent: ptr(75.0), Items: []talon.ProgressItem{{Name: "eu", State: "done"}, {Name: "us", State: "running"}}, Message: "loading"},
		Artifacts: []talon.Artifact{{ID: 1, RunID: 1, Job: "extract", Period: "daily/2026-11-25", URL: "s3://sales/2026-11-25.csv"}}},
		nil, nil)
	b.Add(talon.Run{Job: "extract", Period: "daily/2026-11-26", State: talon.StateFailed, Executor: "local",
		Trigger: "schedule:0 6 * * *", FireTime: at("2026-11-26T06:00:00Z"), Created: at("2026-11-26T06:00:00Z"),
		Started: ptr(at("2026-11-26T06:00:01Z")), Finished: ptr(at("2026-11-26T06:00:09Z")), Reason: "exit status 1"},
		nil, []talon.Event{
			{ID: 1, RunID: 2, Time: at("2026-11-26T06:00:00Z"), To: talon.StateBlocked, Reason: "fired"},
			{ID: 2, RunID: 2, Time: at("2026-11-26T06:00:00Z"), From: talon.StateBlocked, To: talon.StateReady, Reason: "all constraints pass"},
			{ID: 3, RunID: 2, Time: at("2026-11-26T06:00:01Z"), From: talon.StateReady, To: talon.StateRunning, Reason: "started by local"},
			{ID: 4, RunID: 2, Time: at("2026-11-26T06:00:09Z"), From: talon.StateRunning, To: talon.StateFailed, Reason: "exit status 1"},
		})
	b.Add(talon.Run{Job: "load-sales", Period: "daily/2026-11-26", State: talon.StateBlocked, Executor: "local",
		Trigger: "after:extract", Created: at("2026-11-26T06:00:00Z"), Reason: "after: extract has no succeeded run for daily/2026-11-26",
		Params: map[string]string{"region": "eu"}},
		[]talon.Decision{
			{Constraint: "after", Action: talon.ActionBlock, Reason: "extract has no succeeded run for daily/2026-11-26"},
			{Constraint: "not_before", Action: talon.ActionPass, Reason: "07:00 has passed"},
		},
		[]talon.Event{{ID: 5, RunID: 3, Time: at("2026-11-26T06:00:00Z"), To: talon.StateBlocked, Reason: "after: extract has no succeeded run for daily/2026-11-26"}})
	b.SetLog(2, "extracting sales\nerror: bucket not found\n")
	b.ReloadSummary = "ok: 3 jobs (1 time trigger, 1 completion trigger), 1 calendar, 0 resources in 1 file"
	return b
}

// testSSHD reads the settings scripts/sshd writes to
// $TALON_SSH_DIR/env (default /tmp/talon-ssh/env) and checks that its
// server accepts connections.
func testSSHD() (map[string]string, error) {
	dir := os.Getenv("TALON_SSH_DIR")
	if dir == "" {
		dir = "/tmp/talon-ssh"
	}
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "TALON_TEST_SSH_") {
			env[k] = v
		}
	}
	c, err := net.DialTimeout("tcp", env["TALON_TEST_SSH_ADDR"], 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.Close()
	return env, nil
}
