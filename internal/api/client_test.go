package api_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/view"
)

// clientBundle is a real api.Server on a real port, with a fake Backend.
type clientBundle struct {
	*testBundle
	client *api.Client
}

func setupClient(t *testing.T) *clientBundle {
	t.Helper()
	tb := setup(t)
	hs := httptest.NewServer(tb.server)
	t.Cleanup(hs.Close)
	return &clientBundle{testBundle: tb, client: api.NewClient(hs.URL+"/", hs.Client())}
}

// wantCode checks that err is a *talon.Error with the given code.
func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var te *talon.Error
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want *talon.Error %s", err, err, code)
	}
	if te.Code != code || (msg != "" && te.Message != msg) {
		t.Errorf("err = %s %q, want %s %q", te.Code, te.Message, code, msg)
	}
}

func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	cb := setupClient(t)
	ctx := t.Context()
	c := cb.client

	jobs, err := c.Jobs(ctx)
	if err != nil || len(jobs) != 2 || jobs[1].Name != "load-sales" {
		t.Errorf("Jobs = %+v, %v", jobs, err)
	}

	runs, err := c.Runs(ctx, view.RunFilter{Job: "extract", States: []talon.State{talon.StateFailed, talon.StateSucceeded}, BeforeID: 3, Limit: 5})
	if err != nil || len(runs) != 2 || runs[0].ID != 2 {
		t.Errorf("Runs = %+v, %v", runs, err)
	}
	if f := cb.backend.Last().RunFilter; f.Job != "extract" || len(f.States) != 2 || f.BeforeID != 3 || f.Limit != 5 {
		t.Errorf("filter passed = %+v", f)
	}

	d, err := c.Run(ctx, 3)
	if err != nil || d.ID != 3 || len(d.Decisions) != 1 || d.Decisions[0].Action != talon.ActionBlock || len(d.Events) != 1 {
		t.Errorf("Run = %+v, %v", d, err)
	}

	periods, err := c.Periods(ctx, view.PeriodFilter{Job: "extract", Limit: 10})
	if err != nil || len(periods) != 2 || periods[0].Period != "daily/2026-11-26" || periods[0].Counts[talon.StateFailed] != 1 || periods[0].LatestRun != 2 {
		t.Errorf("Periods = %+v, %v", periods, err)
	}

	req := talon.TriggerRequest{Period: "daily/2026-11-27", Params: map[string]string{"a": "b"}, Key: "k"}
	run, created, err := c.Trigger(ctx, "extract", req)
	if err != nil || !created || run.ID != 4 || run.Params["a"] != "b" {
		t.Errorf("Trigger = %+v, %v, %v", run, created, err)
	}
	again, created, err := c.Trigger(ctx, "extract", req)
	if err != nil || created || again.ID != 4 {
		t.Errorf("Trigger again = %+v, %v, %v; want run 4, not created", again, created, err)
	}

	c.User = "alice"
	cancelled, err := c.Cancel(ctx, 4, "")
	if err != nil || cancelled.State != talon.StateSkipped || cancelled.Reason != "cancelled by alice" {
		t.Errorf("Cancel = %+v, %v", cancelled, err)
	}
	retried, err := c.Retry(ctx, 4, "bob")
	if err != nil || retried.Attempt != 2 || retried.RetryOf != 4 || cb.backend.Last().By != "bob" {
		t.Errorf("Retry = %+v, %v (by %q)", retried, err, cb.backend.Last().By)
	}

	rc, err := c.Logs(ctx, 2)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	text, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(text) != "line 1\nline 2\n" {
		t.Errorf("Logs = %q, %v", text, err)
	}

	pct := 40.0
	if err := c.SetProgress(ctx, 3, talon.Progress{Percent: &pct, Items: []talon.ProgressItem{{Name: "eu", State: "done"}}}); err != nil {
		t.Errorf("SetProgress: %v", err)
	}
	if p := cb.backend.Last().Progress; p.Percent == nil || *p.Percent != 40 || p.Items[0].Name != "eu" {
		t.Errorf("progress passed = %+v", p)
	}

	a, err := c.AddArtifact(ctx, 3, "s3://bucket/x.csv", "")
	if err != nil || a.URL != "s3://bucket/x.csv" || a.RunID != 3 || a.Job != "load-sales" {
		t.Errorf("AddArtifact = %+v, %v", a, err)
	}

	cb.backend.ReloadSummary = "2 jobs"
	if s, err := c.Reload(ctx); err != nil || s != "2 jobs" {
		t.Errorf("Reload = %q, %v", s, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health = %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	cb := setupClient(t)
	ctx := t.Context()
	c := cb.client

	_, err := c.Run(ctx, 999)
	wantCode(t, err, talon.ENOTFOUND, "run 999 not found")
	_, err = c.Logs(ctx, 999)
	wantCode(t, err, talon.ENOTFOUND, "run 999 not found")
	_, _, err = c.Trigger(ctx, "nope", talon.TriggerRequest{})
	wantCode(t, err, talon.ENOTFOUND, `job "nope" not found`)
	_, err = c.Cancel(ctx, 1, "")
	wantCode(t, err, talon.ECONFLICT, "")
	err = c.SetProgress(ctx, 3, talon.Progress{Percent: new(200.0)})
	wantCode(t, err, talon.EINVALID, "progress: percent 200: want a number from 0 to 100")
	_, err = c.Runs(ctx, view.RunFilter{Limit: 5000})
	wantCode(t, err, talon.EINVALID, `limit "5000": want 1 to 1000`)

	cb.backend.ReloadErr = talon.Errorf(talon.EINVALID, "schedule.yaml:3:5: unknown key \"schedul\"")
	_, err = c.Reload(ctx)
	wantCode(t, err, talon.EINVALID, "schedule.yaml:3:5: unknown key \"schedul\"")

	cb.backend.HealthErr = talon.Errorf(talon.EUNAVAILABLE, "state store unavailable")
	wantCode(t, c.Health(ctx), talon.EUNAVAILABLE, "state store unavailable")

	cb.backend.Err = errors.New("boom")
	_, err = c.Jobs(ctx)
	wantCode(t, err, talon.EINTERNAL, "")
	if strings.Contains(err.Error(), "boom") {
		t.Errorf("internal error leaks its cause: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	t.Parallel()
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	l.Close()

	err = api.NewClient(base, nil).Health(t.Context())
	wantCode(t, err, talon.EUNAVAILABLE, "cannot reach talon at "+base+": connection refused")
}

func TestClientNotTalon(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode string
		wantMsg  string
	}{
		{name: "proxy without upstream", status: 502, body: "upstream down", wantCode: talon.EUNAVAILABLE, wantMsg: "server answered 502 Bad Gateway: upstream down"},
		{name: "some other site", status: 404, body: "<html>nope</html>", wantCode: talon.ENOTFOUND, wantMsg: "server answered 404 Not Found: <html>nope</html>"},
		{name: "proxy refusing the method", status: 405, body: "GET only", wantCode: api.EMETHODNOTALLOWED, wantMsg: "server answered 405 Method Not Allowed: GET only"},
		{name: "teapot", status: 418, wantCode: talon.EINTERNAL, wantMsg: "server answered 418 I'm a teapot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(hs.Close)
			_, err := api.NewClient(hs.URL, hs.Client()).Jobs(t.Context())
			wantCode(t, err, tt.wantCode, tt.wantMsg)
		})
	}
}

func TestClientIsABackend(t *testing.T) {
	t.Parallel()
	// A Client can stand where a Backend goes: a server in front of
	// another server forwards errors with their codes.
	cb := setupClient(t)
	front := httptest.NewServer(api.NewServer(cb.client, slog.New(slog.DiscardHandler)))
	t.Cleanup(front.Close)
	_, err := api.NewClient(front.URL, front.Client()).Run(t.Context(), 999)
	wantCode(t, err, talon.ENOTFOUND, "run 999 not found")
}
