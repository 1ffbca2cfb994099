package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/talonhq/talon"
)

// TestParamsNeverBecomeShellText triggers a job with parameters made to
// run a command if any part of Talon pasted them into a shell line, and
// checks that none did and that the job received them intact.
func TestParamsNeverBecomeShellText(t *testing.T) {
	// The job's own shell quotes "$TALON_PARAMS" as any careful job does;
	// what is tested is Talon's part: the command line and environment it
	// builds.
	srv := serveInProcess(t, `
jobs:
  echo:
    period: daily
    poll: 1h
    dir: {{DIR}}
    command: [sh, -c, 'printf "%s" "$TALON_PARAMS" > "params-$TALON_RUN_ID.json"', "$(touch CANARY-argv)"]
`)
	payloads := []string{
		"; touch CANARY",
		"$(touch CANARY)",
		"`touch CANARY`",
		"x\ntouch CANARY\n",
		"' ; touch CANARY ; '",
		"\" && touch CANARY && \"",
		"| touch CANARY",
		"${IFS}touch${IFS}CANARY",
		"{{period}} $TALON_RUN_ID",
	}
	for i, p := range payloads {
		params := map[string]string{"value": p, "touch CANARY; k": p}
		run, _, err := srv.client.Trigger(t.Context(), "echo", talon.TriggerRequest{Params: params, Key: "p" + strconv.Itoa(i)})
		if err != nil {
			t.Fatalf("trigger with %q: %v", p, err)
		}
		end := srv.waitEnd(t, run.ID)
		if end.State != talon.StateSucceeded {
			t.Fatalf("run %d with %q: %s (%s)", run.ID, p, end.State, end.Reason)
		}
		got := readParams(t, srv, run.ID)
		for k, v := range params {
			if got[k] != v {
				t.Errorf("payload %q: param %q arrived as %q", p, k, got[k])
			}
		}
		if run.Params["value"] != p {
			t.Errorf("payload %q: stored as %q", p, run.Params["value"])
		}
	}
	found, _ := filepath.Glob(filepath.Join(srv.dir, "CANARY*"))
	if len(found) > 0 {
		t.Fatalf("a payload ran as shell text: %v", found)
	}
}

// readParams reads the params file the echo job wrote in its dir.
func readParams(t *testing.T, srv *servedTalon, id int64) map[string]string {
	t.Helper()
	name := filepath.Join(srv.dir, "params-"+strconv.FormatInt(id, 10)+".json")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("the job wrote no params: %v", err)
	}
	var out map[string]string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v (%q)", name, err, b)
	}
	return out
}

// TestTraversalNeverReadsOutside asks for logs (and other objects) with
// paths made to climb out of the log directory, encoded the ways that
// have fooled servers before, and checks that no answer carries a file
// from outside it and none is a 5xx.
func TestTraversalNeverReadsOutside(t *testing.T) {
	srv := serveInProcess(t, `
jobs:
  talk:
    period: daily
    poll: 1h
    command: [echo, hello]
`)
	const secret = "TOPSECRET-7f3a"
	for _, f := range []string{filepath.Join(srv.dir, "secret.txt"), filepath.Join(srv.dir, "logs", "..", "secret.log")} {
		if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run, _, err := srv.client.Trigger(t.Context(), "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	srv.waitEnd(t, run.ID)

	paths := []string{
		"/api/v1/runs/..%2fsecret.txt/logs",
		"/api/v1/runs/%2e%2e%2fsecret.txt/logs",
		"/api/v1/runs/..%252fsecret.txt/logs",
		"/api/v1/runs/%2e%2e%252f%2e%2e%252fsecret.txt/logs",
		"/api/v1/runs/1%2f..%2f..%2fsecret.txt/logs",
		"/api/v1/runs/1/logs/../../../secret.txt",
		"/api/v1/runs/1/..%2f..%2f..%2fsecret.txt",
		"/api/v1/runs/-1/logs",
		"/api/v1/runs/1e3/logs",
		"/api/v1/runs/%00/logs",
		"/api/v1/runs/1%00/logs",
		"/api/v1/jobs/..%2f..%2fsecret/trigger",
		"/api/v1/../../secret.txt",
		"/api/v1/%2e%2e/%2e%2e/secret.txt",
		"/api/v1/runs/1/logs?follow=..%2fsecret.txt",
		"/api/v1/runs/1/logs?path=../secret.txt",
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, err := http.NewRequestWithContext(t.Context(), method, srv.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Opaque keeps the path exactly as written, encoded bytes and
			// dot segments included: what a hostile client sends.
			req.URL.Opaque = p
			if i := strings.IndexByte(p, '?'); i >= 0 {
				req.URL.Opaque, req.URL.RawQuery = p[:i], p[i+1:]
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, p, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), secret) {
				t.Errorf("%s %s: the answer carries a file from outside the log directory", method, p)
			}
			if resp.StatusCode >= 500 {
				t.Errorf("%s %s: %s %s", method, p, resp.Status, body)
			}
			if resp.StatusCode == http.StatusOK && method == http.MethodGet && !strings.HasPrefix(p, "/api/v1/runs/1/logs?") {
				t.Errorf("%s %s: 200 %q", method, p, body)
			}
		}
	}
}
