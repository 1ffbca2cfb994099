package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/view"
)

type opsBundle struct {
	e *engine.Engine
	// backend is what the server serves: the engine's commands and the
	// query service's reads.
	backend api.Backend
	st      store.Store
	url     string
	client  *api.Client
	now     time.Time
}

// setupOps serves a real engine on SQLite (stepped by hand at a fixed
// time) through a real HTTP server.
func setupOps(t *testing.T) *opsBundle {
	t.Helper()
	const yaml = `
jobs:
  extract:
    period: daily
    executor: inprocess
    command: [fail]
  load:
    period: daily
    constraints: {after: [extract]}
    executor: inprocess
    command: [noop]
`
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "schedule.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ip := inprocess.New()
	ip.Register("noop", func(context.Context, inprocess.Run) error { return nil })
	ip.Register("fail", func(context.Context, inprocess.Run) error { return fmt.Errorf("boom") })
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	e, err := engine.New(engine.Config{Store: st, Schedule: s, Now: func() time.Time { return now }, LogDir: t.TempDir(),
		Executors: map[string]executor.Executor{"inprocess": ip}})
	if err != nil {
		t.Fatal(err)
	}
	backend := api.Join(query.New(st, e, func() time.Time { return now }), e)
	hs := httptest.NewServer(api.NewServer(backend, slog.New(slog.NewTextHandler(t.Output(), nil))))
	t.Cleanup(hs.Close)
	c := api.NewClient(hs.URL, nil)
	c.User = "alice"
	return &opsBundle{e: e, backend: backend, st: st, url: hs.URL, client: c, now: now}
}

func (b *opsBundle) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := b.e.Settle(ctx, b.now); err != nil {
		t.Fatal(err)
	}
}

// Every operation is audited once, with who, what, which object, from
// where and how it ended, errors included; reads are not.
func TestAuditRecordsOperations(t *testing.T) {
	b := setupOps(t)
	ctx := t.Context()
	load, _, err := b.client.Trigger(ctx, "load", talon.TriggerRequest{Period: "daily/2026-11-26"})
	if err != nil {
		t.Fatal(err)
	}
	ex, _, err := b.client.Trigger(ctx, "extract", talon.TriggerRequest{Period: "daily/2026-11-26"})
	if err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	if _, _, err := b.client.Pause(ctx, "extract", "", "disk full"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.client.Trigger(ctx, "extract", talon.TriggerRequest{}); err == nil {
		t.Fatal("trigger of a paused job accepted")
	}
	if _, err := b.client.Resume(ctx, "extract", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Mark(ctx, ex.ID, talon.StateSucceeded, "fixed by hand", ""); err != nil {
		t.Fatal(err)
	}
	b.settle(t)
	if r, _ := b.client.Run(ctx, load.ID); r.State != talon.StateSucceeded {
		t.Fatalf("load after its upstream was marked succeeded: %s (%s)", r.State, r.Reason)
	}
	if _, err := b.client.Cancel(ctx, load.ID, ""); err == nil {
		t.Fatal("cancel of a succeeded run accepted")
	}
	if _, err := b.client.Runs(ctx, view.RunFilter{}); err != nil { // a read: not audited
		t.Fatal(err)
	}

	entries, err := b.client.Audit(ctx, view.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ action, object, outcome string }
	var got []row
	for i := len(entries) - 1; i >= 0; i-- {
		a := entries[i]
		if a.Actor != "alice" || !strings.HasPrefix(a.Remote, "127.0.0.1:") || !a.Time.Equal(b.now) {
			t.Errorf("entry %d: actor %q, remote %q, time %s", a.ID, a.Actor, a.Remote, a.Time)
		}
		outcome, _, _ := strings.Cut(a.Outcome, ":")
		got = append(got, row{a.Action, a.Object, outcome})
	}
	want := []row{
		{"trigger", "job load", "ok"},
		{"trigger", "job extract", "ok"},
		{"pause", "job extract", "ok"},
		{"trigger", "job extract", "conflict"},
		{"resume", "job extract", "ok"},
		{"mark", fmt.Sprintf("run %d", ex.ID), "ok"},
		{"cancel", fmt.Sprintf("run %d", load.ID), "conflict"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit, oldest first:\n%v\nwant\n%v", got, want)
	}
	if m := entries[1]; m.Detail != "succeeded: fixed by hand" {
		t.Errorf("mark detail = %q", m.Detail)
	}
	if p := entries[4]; p.Detail != "disk full" {
		t.Errorf("pause detail = %q", p.Detail)
	}
	// A created run's entry is recorded in the run's own transaction
	// (talon.TriggerRequest.Audit), with the same words.
	if tr, want := entries[len(entries)-1].Detail, fmt.Sprintf("run %d for daily/2026-11-26", load.ID); tr != want {
		t.Errorf("trigger detail = %q, want %q", tr, want)
	}
}

// The audit pages like runs: a full page sends a Link to the next one.
func TestAuditPagination(t *testing.T) {
	b := setupOps(t)
	for i := range 5 {
		if err := b.e.RecordAudit(t.Context(), talon.AuditEntry{Actor: "bob", Action: "trigger", Object: fmt.Sprintf("job j%d", i), Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	next := b.url + api.Prefix + "audit?actor=bob&limit=2"
	var objects []string
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		resp, err := http.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		var page []talon.AuditEntry
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, a := range page {
			objects = append(objects, a.Object)
		}
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			next = b.url + strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	if got := strings.Join(objects, ","); got != "job j4,job j3,job j2,job j1,job j0" {
		t.Fatalf("audit pages: %s", got)
	}
	if _, err := b.client.Audit(t.Context(), view.AuditFilter{Since: b.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	api.NewServer(b.backend, slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest("GET", api.Prefix+"audit?since=yesterday", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "RFC 3339") {
		t.Fatalf("bad since: %d %s", rec.Code, rec.Body)
	}
}

// The audit is for admins; pause, resume, mark and the bulk routes for
// operators (the one permission table).
func TestOpsRoutesPermissions(t *testing.T) {
	s := api.NewServer(setupOps(t).backend, slog.New(slog.DiscardHandler), api.WithAuthorizer(func(r *http.Request, perm auth.Permission) (auth.Principal, error) {
		olga := auth.Principal{Name: "olga", Role: auth.RoleOperator}
		if !olga.Allows(perm, 0) {
			return auth.Principal{}, talon.Errorf(api.EFORBIDDEN, "operators may not %s", perm)
		}
		return olga, nil
	}))
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "audit", "", http.StatusForbidden},
		{"POST", "jobs/extract/pause", "", http.StatusCreated},
		{"POST", "jobs/extract/resume", "", http.StatusOK},
		{"POST", "runs/cancel", `{"job":"extract","dry_run":true}`, http.StatusOK},
		{"POST", "runs/retry", `{"job":"extract","dry_run":true}`, http.StatusOK},
		{"POST", "runs/1/mark", `{"state":"succeeded","reason":"x"}`, http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tc.method, api.Prefix+tc.path, strings.NewReader(tc.body)))
		if rec.Code != tc.want {
			t.Errorf("%s %s as operator: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.want)
		}
	}
}

// Bulk cancel acts on each run the filter matches and says what came of
// each; a dry run does nothing and is not audited; bad filters are 400.
func TestBulkCancelAndRetry(t *testing.T) {
	b := setupOps(t)
	ctx := t.Context()
	var loads []talon.Run
	for d := 20; d <= 23; d++ {
		r, _, err := b.client.Trigger(ctx, "load", talon.TriggerRequest{Period: fmt.Sprintf("daily/2026-11-%d", d)})
		if err != nil {
			t.Fatal(err)
		}
		loads = append(loads, r)
	}
	ex, _, err := b.client.Trigger(ctx, "extract", talon.TriggerRequest{Period: "daily/2026-11-19"})
	if err != nil {
		t.Fatal(err)
	}
	b.settle(t) // the loads stay blocked (no extract succeeded), extract fails

	dry, err := b.client.BulkCancel(ctx, api.BulkRequest{Job: "load", States: []talon.State{talon.StateBlocked}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.Matched != 4 || dry.Done != 0 || dry.Results[0].Outcome != "would cancel" {
		t.Fatalf("dry run: %+v", dry)
	}
	if r, _ := b.client.Run(ctx, loads[0].ID); r.State != talon.StateBlocked {
		t.Fatalf("a dry run cancelled run %d", r.ID)
	}
	// One run leaves blocked meanwhile: marked by hand.
	if _, err := b.client.Mark(ctx, loads[3].ID, talon.StateSucceeded, "done", ""); err != nil {
		t.Fatal(err)
	}
	res, err := b.client.BulkCancel(ctx, api.BulkRequest{Job: "load", States: []talon.State{talon.StateBlocked}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 3 || res.Done != 3 || res.Skipped != 0 {
		t.Fatalf("bulk cancel: %+v", res)
	}
	for _, it := range res.Results {
		if it.Outcome != "cancelled" || it.State != talon.StateSkipped || it.Reason != "cancelled by alice" {
			t.Errorf("bulk cancel item: %+v", it)
		}
	}

	res, err = b.client.BulkRetry(ctx, api.BulkRequest{Job: "extract", Period: "daily/2026-11-19"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 1 || res.Results[0].ID != ex.ID || res.Results[0].Run == 0 {
		t.Fatalf("bulk retry: %+v", res)
	}
	// The retry was created: the original is skipped a second time.
	b.settle(t)
	res, err = b.client.BulkRetry(ctx, api.BulkRequest{Job: "extract", States: []talon.State{talon.StateFailed}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 2 || res.Done != 1 || res.Skipped != 1 {
		t.Fatalf("second bulk retry: %+v", res)
	}
	for _, it := range res.Results {
		if it.ID == ex.ID && (it.Outcome != "skipped" || !strings.Contains(it.Reason, "already retried")) {
			t.Errorf("retry of a run already retried: %+v", it)
		}
	}

	for _, tc := range []struct{ path, body, want string }{
		{"runs/cancel", `{}`, "name a job or a period"},
		{"runs/cancel", `{"job":"load","states":["succeeded"]}`, "only blocked,ready,running runs can be cancelled"},
		{"runs/retry", `{"job":"load","states":["blocked"]}`, "only failed,skipped runs can be retried"},
		{"runs/retry", `{"job":"load","states":["nope"]}`, `state "nope"`},
		{"runs/cancel", `{"job":"load","period":"weekly/x"}`, "weekly/x"},
		{"runs/cancel", `{"job":"load","stat":"x"}`, `unknown field "stat"`},
	} {
		resp, err := http.Post(b.url+api.Prefix+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var eb struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(eb.Error.Message, tc.want) {
			t.Errorf("POST %s %s: %d %q, want 400 with %q", tc.path, tc.body, resp.StatusCode, eb.Error.Message, tc.want)
		}
	}

	entries, err := b.client.Audit(ctx, view.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var bulk []string
	for _, a := range entries {
		if strings.HasSuffix(a.Action, "-runs") && a.Outcome == "ok" {
			bulk = append(bulk, a.Action+" "+a.Object+": "+a.Detail)
		}
	}
	if len(bulk) != 3 || !strings.HasPrefix(bulk[2], "cancel-runs runs job=load state=blocked: cancelled 3 of 3, skipped 0: runs ") {
		t.Fatalf("bulk operations in the audit (a dry run is not):\n%s", strings.Join(bulk, "\n"))
	}
}

// More than MaxBulk matching runs are refused as a whole.
func TestBulkIsBounded(t *testing.T) {
	b := setupOps(t)
	var cs []store.CreateRun
	for i := range api.MaxBulk + 1 {
		cs = append(cs, store.CreateRun{Job: "load", Period: "daily/2026-11-26", Trigger: "api", Key: fmt.Sprint(i), Now: b.now})
	}
	if _, err := b.st.CreateRuns(t.Context(), cs); err != nil {
		t.Fatal(err)
	}
	_, err := b.client.BulkCancel(t.Context(), api.BulkRequest{Job: "load"})
	var te *talon.Error
	if !errorsAs(err, &te) || te.Code != talon.EINVALID || !strings.Contains(te.Message, "more than 1000 runs match") {
		t.Fatalf("bulk cancel of 1001 runs: %v", err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
