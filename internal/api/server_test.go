package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/api/apitest"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/view"
)

// syncBuffer collects log lines written from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testBundle struct {
	backend *apitest.Backend
	server  *api.Server
	logs    *syncBuffer
}

func setup(t *testing.T, opts ...api.Option) *testBundle {
	t.Helper()
	b := apitest.New(
		view.JobInfo{Name: "extract", Period: "daily", Timezone: "UTC", Executor: "local"},
		view.JobInfo{Name: "load-sales", Period: "daily", Timezone: "UTC", Executor: "local"},
	)
	b.Add(talon.Run{Job: "extract", Period: "daily/2026-11-25", State: talon.StateSucceeded}, nil, nil)
	b.Add(talon.Run{Job: "extract", Period: "daily/2026-11-26", State: talon.StateFailed, Reason: "exit status 1"}, nil, nil)
	b.Add(talon.Run{Job: "load-sales", Period: "daily/2026-11-26", State: talon.StateBlocked, Reason: "after extract: no succeeded run"},
		[]talon.Decision{{Constraint: "after", Action: talon.ActionBlock, Reason: "no succeeded run of extract"}},
		[]talon.Event{{ID: 1, RunID: 3, Time: apitest.Fixed, To: talon.StateBlocked, Reason: "created"}})
	b.SetLog(2, "line 1\nline 2\n")
	logs := &syncBuffer{}
	return &testBundle{
		backend: b,
		server:  api.NewServer(b, slog.New(slog.NewTextHandler(logs, nil)), opts...),
		logs:    logs,
	}
}

func (tb *testBundle) do(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, target, r)
	rec := httptest.NewRecorder()
	tb.server.ServeHTTP(rec, req)
	return rec
}

// errorOf decodes an error answer, failing the test when it is not one.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) (code, msg string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("body %q is not an error answer (%v)", rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return b.Error.Code, b.Error.Message
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		wantStatus int
		wantCode   string
		wantMsg    string // a regexp
	}{
		{name: "bad run id", method: "GET", target: "/api/v1/runs/abc", wantStatus: 400, wantCode: "invalid", wantMsg: `run id "abc": want a positive integer`},
		{name: "zero run id", method: "POST", target: "/api/v1/runs/0/cancel", wantStatus: 400, wantCode: "invalid", wantMsg: `run id "0": want a positive integer`},
		{name: "unknown run", method: "GET", target: "/api/v1/runs/999", wantStatus: 404, wantCode: "not_found", wantMsg: `run 999 not found`},
		{name: "unknown run logs", method: "GET", target: "/api/v1/runs/999/logs", wantStatus: 404, wantCode: "not_found", wantMsg: `run 999 not found`},
		{name: "unknown route", method: "GET", target: "/api/v1/nope", wantStatus: 404, wantCode: "not_found", wantMsg: `no such route: GET /api/v1/nope`},
		{name: "outside the api", method: "GET", target: "/favicon.ico", wantStatus: 404, wantCode: "not_found", wantMsg: `no such route`},
		{name: "wrong method", method: "DELETE", target: "/api/v1/runs/1", wantStatus: 405, wantCode: "method_not_allowed", wantMsg: `method DELETE not allowed on /api/v1/runs/1 \(allowed: GET, HEAD\)`},
		{name: "bad state", method: "GET", target: "/api/v1/runs?state=running,done", wantStatus: 400, wantCode: "invalid", wantMsg: `state "done": want one of blocked, ready, running, succeeded, failed, skipped`},
		{name: "limit too large", method: "GET", target: "/api/v1/runs?limit=5000", wantStatus: 400, wantCode: "invalid", wantMsg: `limit "5000": want 1 to 1000`},
		{name: "limit not a number", method: "GET", target: "/api/v1/periods?limit=ten", wantStatus: 400, wantCode: "invalid", wantMsg: `limit "ten": want 1 to 1000`},
		{name: "bad before", method: "GET", target: "/api/v1/runs?before=x", wantStatus: 400, wantCode: "invalid", wantMsg: `before "x": want a run id`},
		{name: "unknown query parameter", method: "GET", target: "/api/v1/runs?stat=failed", wantStatus: 400, wantCode: "invalid", wantMsg: `unknown query parameter "stat" \(want job, period, state, before, limit\)`},
		{name: "unknown field", method: "POST", target: "/api/v1/jobs/extract/trigger", body: `{"periode": "daily/2026-11-26"}`, wantStatus: 400, wantCode: "invalid", wantMsg: `request body: unknown field "periode"`},
		{name: "wrong type", method: "POST", target: "/api/v1/jobs/extract/trigger", body: `{"params": {"n": 3}}`, wantStatus: 400, wantCode: "invalid", wantMsg: `request body: field "params": want string, got JSON number`},
		{name: "bad json", method: "POST", target: "/api/v1/jobs/extract/trigger", body: `{"period": }`, wantStatus: 400, wantCode: "invalid", wantMsg: `request body: invalid JSON at byte 12`},
		{name: "trailing data", method: "POST", target: "/api/v1/jobs/extract/trigger", body: `{} {}`, wantStatus: 400, wantCode: "invalid", wantMsg: `unexpected data after the JSON object`},
		{name: "unknown job", method: "POST", target: "/api/v1/jobs/extrct/trigger", wantStatus: 404, wantCode: "not_found", wantMsg: `job "extrct" not found`},
		{name: "cancel finished run", method: "POST", target: "/api/v1/runs/1/cancel", wantStatus: 409, wantCode: "conflict", wantMsg: `run 1 is succeeded`},
		{name: "retry blocked run", method: "POST", target: "/api/v1/runs/3/retry", wantStatus: 409, wantCode: "conflict", wantMsg: `only failed or skipped runs can be retried`},
		{name: "progress without body", method: "POST", target: "/api/v1/runs/3/progress", wantStatus: 400, wantCode: "invalid", wantMsg: `request body: empty, want a JSON object`},
		{name: "progress out of range", method: "POST", target: "/api/v1/runs/3/progress", body: `{"percent": 140}`, wantStatus: 400, wantCode: "invalid", wantMsg: `progress: percent 140: want a number from 0 to 100`},
		{name: "progress items beyond total", method: "POST", target: "/api/v1/runs/3/progress", body: `{"items_done": 11, "items_total": 10}`, wantStatus: 400, wantCode: "invalid", wantMsg: `items_done 11 is more than items_total 10`},
		{name: "progress negative duration", method: "POST", target: "/api/v1/runs/3/progress", body: `{"expected": "-5m"}`, wantStatus: 400, wantCode: "invalid", wantMsg: `expected -5m0s: want a duration of zero or more`},
		{name: "progress empty item name", method: "POST", target: "/api/v1/runs/3/progress", body: `{"items": [{"name": "", "state": "done"}]}`, wantStatus: 400, wantCode: "invalid", wantMsg: `items\[0\]: name is empty`},
		{name: "progress bad duration", method: "POST", target: "/api/v1/runs/3/progress", body: `{"expected": "soon"}`, wantStatus: 400, wantCode: "invalid", wantMsg: `request body: .*soon`},
		{name: "artifact without url", method: "POST", target: "/api/v1/runs/3/artifacts", body: `{}`, wantStatus: 400, wantCode: "invalid", wantMsg: `url: artifact URL is empty`},
		{name: "artifact javascript", method: "POST", target: "/api/v1/runs/3/artifacts", body: `{"url": "javascript:alert(document.cookie)"}`, wantStatus: 400, wantCode: "invalid", wantMsg: `scheme "javascript" is not allowed \(allowed: file, s3, .*https`},
		{name: "artifact data", method: "POST", target: "/api/v1/runs/3/artifacts", body: `{"url": "data:text/html;base64,PHNjcmlwdD4="}`, wantStatus: 400, wantCode: "invalid", wantMsg: `scheme "data" is not allowed`},
		{name: "artifact vbscript", method: "POST", target: "/api/v1/runs/3/artifacts", body: `{"url": "VBScript:msgbox"}`, wantStatus: 400, wantCode: "invalid", wantMsg: `scheme "VBScript" is not allowed`},
		{name: "artifact hidden scheme", method: "POST", target: "/api/v1/runs/3/artifacts", body: `{"url": " javascript:alert(1)"}`, wantStatus: 400, wantCode: "invalid", wantMsg: `space or control character`},
		{name: "artifact bad name", method: "POST", target: "/api/v1/runs/3/artifacts", body: `{"url": "s3://b/x", "name": "../x"}`, wantStatus: 400, wantCode: "invalid", wantMsg: `name: artifact name "../x"`},
		{name: "artifacts bad before", method: "GET", target: "/api/v1/artifacts?before=x", wantStatus: 400, wantCode: "invalid", wantMsg: `before "x": want an artifact id`},
		{name: "artifacts unknown parameter", method: "GET", target: "/api/v1/artifacts?run=3", wantStatus: 400, wantCode: "invalid", wantMsg: `unknown query parameter "run" \(want job, period, before, limit\)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			rec := tb.do(t, tt.method, tt.target, tt.body)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			code, msg := errorOf(t, rec)
			if code != tt.wantCode {
				t.Errorf("code = %q, want %q", code, tt.wantCode)
			}
			if !regexp.MustCompile(tt.wantMsg).MatchString(msg) {
				t.Errorf("message = %q, want match for %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestServerInternalErrorIsHidden(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.backend.Err = errors.New("query runs: pq: password authentication failed for secret-user")
	rec := tb.do(t, "GET", "/api/v1/runs", "")
	if rec.Code != 500 {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	code, msg := errorOf(t, rec)
	id := rec.Header().Get("X-Request-Id")
	if code != "internal" || msg != "internal error (request "+id+")" || id == "" {
		t.Errorf("answer = %q %q (request id %q), want internal error naming the request", code, msg, id)
	}
	if strings.Contains(rec.Body.String(), "secret-user") {
		t.Errorf("answer leaks the cause: %s", rec.Body)
	}
	if logs := tb.logs.String(); !strings.Contains(logs, "request="+id) || !strings.Contains(logs, "secret-user") {
		t.Errorf("log does not record the cause with the request id:\n%s", logs)
	}
}

func TestServerHealth(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if rec := tb.do(t, "GET", "/api/v1/healthz", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ok"`) {
		t.Errorf("healthy: %d %s", rec.Code, rec.Body)
	}
	tb.backend.HealthErr = talon.Errorf(talon.EUNAVAILABLE, "state store unavailable")
	rec := tb.do(t, "GET", "/api/v1/healthz", "")
	if code, msg := errorOf(t, rec); rec.Code != 503 || code != "unavailable" || msg != "state store unavailable" {
		t.Errorf("unhealthy: %d %s %s", rec.Code, code, msg)
	}
}

func TestServerRunsFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		query     string
		wantIDs   []int64
		wantNext  string
		wantState []talon.State
	}{
		{name: "all", query: "", wantIDs: []int64{3, 2, 1}},
		{name: "by job", query: "?job=extract", wantIDs: []int64{2, 1}},
		{name: "by period", query: "?period=daily/2026-11-26", wantIDs: []int64{3, 2}},
		{name: "repeated states", query: "?state=failed&state=blocked", wantIDs: []int64{3, 2}, wantState: []talon.State{"failed", "blocked"}},
		{name: "comma states", query: "?state=failed,+succeeded", wantIDs: []int64{2, 1}, wantState: []talon.State{"failed", "succeeded"}},
		{name: "full page links the next", query: "?limit=2", wantIDs: []int64{3, 2}, wantNext: `</api/v1/runs?before=2&limit=2>; rel="next"`},
		{name: "next page", query: "?limit=2&before=2", wantIDs: []int64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			rec := tb.do(t, "GET", "/api/v1/runs"+tt.query, "")
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var runs []talon.Run
			if err := json.Unmarshal(rec.Body.Bytes(), &runs); err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, r := range runs {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tt.wantIDs)
			}
			if got := rec.Header().Get("Link"); got != tt.wantNext {
				t.Errorf("Link = %q, want %q", got, tt.wantNext)
			}
			if tt.wantState != nil && !slices.Equal(tb.backend.Last().RunFilter.States, tt.wantState) {
				t.Errorf("states passed = %v, want %v", tb.backend.Last().RunFilter.States, tt.wantState)
			}
		})
	}
	t.Run("default limit", func(t *testing.T) {
		tb := setup(t)
		tb.do(t, "GET", "/api/v1/runs", "")
		if got := tb.backend.Last().RunFilter.Limit; got != api.DefaultLimit {
			t.Errorf("limit = %d, want %d", got, api.DefaultLimit)
		}
	})
}

func TestServerEmptyListsAreArrays(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, target := range []string{"/api/v1/runs?job=none", "/api/v1/periods?job=none"} {
		if rec := tb.do(t, "GET", target, ""); strings.TrimSpace(rec.Body.String()) != "[]" {
			t.Errorf("%s = %s, want []", target, rec.Body)
		}
	}
}

func TestServerTrigger(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	body := `{"period": "daily/2026-11-27", "params": {"region": "eu"}, "key": "k1"}`
	first := tb.do(t, "POST", "/api/v1/jobs/extract/trigger", body)
	if first.Code != 201 {
		t.Fatalf("first trigger: %d %s", first.Code, first.Body)
	}
	var run talon.Run
	if err := json.Unmarshal(first.Body.Bytes(), &run); err != nil {
		t.Fatal(err)
	}
	if run.Period != "daily/2026-11-27" || run.Params["region"] != "eu" || run.Key != "k1" {
		t.Errorf("run = %+v", run)
	}
	if loc := first.Header().Get("Location"); loc != "/api/v1/runs/4" {
		t.Errorf("Location = %q", loc)
	}
	again := tb.do(t, "POST", "/api/v1/jobs/extract/trigger", body)
	if again.Code != 200 || !strings.Contains(again.Body.String(), `"id":4`) {
		t.Errorf("same key: %d %s, want 200 with run 4", again.Code, again.Body)
	}
	if empty := tb.do(t, "POST", "/api/v1/jobs/extract/trigger", ""); empty.Code != 201 {
		t.Errorf("empty body: %d %s, want 201", empty.Code, empty.Body)
	}
}

func TestServerLogs(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	rec := tb.do(t, "GET", "/api/v1/runs/2/logs", "")
	if rec.Code != 200 || rec.Body.String() != "line 1\nline 2\n" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("logs: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestServerAuthorizerSeam(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]auth.Permission{}
	tb := setup(t, api.WithAuthorizer(func(r *http.Request, a auth.Permission) (auth.Principal, error) {
		mu.Lock()
		seen[r.Method+" "+r.URL.Path] = a
		mu.Unlock()
		if a == auth.PermAdmin {
			return auth.Principal{}, &talon.Error{Code: api.EFORBIDDEN, Message: "reload needs the admin role"}
		}
		if r.Header.Get("Authorization") == "" && a != auth.PermPublic {
			return auth.Principal{}, &talon.Error{Code: api.EUNAUTHORIZED, Message: "no token"}
		}
		return auth.Principal{Name: "ops", Role: auth.RoleOperator}, nil
	}))
	if rec := tb.do(t, "POST", "/api/v1/reload", ""); rec.Code != 403 {
		t.Errorf("reload: %d, want 403", rec.Code)
	}
	if rec := tb.do(t, "GET", "/api/v1/jobs", ""); rec.Code != 401 {
		t.Errorf("jobs without token: %d, want 401", rec.Code)
	}
	req := httptest.NewRequestWithContext(t.Context(), "POST", "/api/v1/runs/3/cancel", nil)
	req.Header.Set("Authorization", "Bearer x")
	rec := httptest.NewRecorder()
	tb.server.ServeHTTP(rec, req)
	if rec.Code != 200 || tb.backend.Last().By != "ops" {
		t.Errorf("cancel: %d by %q, want 200 by ops", rec.Code, tb.backend.Last().By)
	}
	tb.do(t, "GET", "/api/v1/healthz", "")
	tb.do(t, "POST", "/api/v1/runs/3/progress", "{}")
	want := map[string]auth.Permission{
		"POST /api/v1/reload":          auth.PermAdmin,
		"GET /api/v1/jobs":             auth.PermRead,
		"POST /api/v1/runs/3/cancel":   auth.PermOperate,
		"GET /api/v1/healthz":          auth.PermPublic,
		"POST /api/v1/runs/3/progress": auth.PermReport,
	}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%s asked for %q, want %q", k, seen[k], v)
		}
	}
}

func TestServerCallerDefaultsToUserHeader(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	req := httptest.NewRequestWithContext(t.Context(), "POST", "/api/v1/runs/3/cancel", nil)
	req.Header.Set(api.UserHeader, "alice")
	tb.server.ServeHTTP(httptest.NewRecorder(), req)
	if by := tb.backend.Last().By; by != "alice" {
		t.Errorf("by = %q, want alice", by)
	}
	tb.do(t, "POST", "/api/v1/runs/2/retry", "")
	if by := tb.backend.Last().By; by != "api" {
		t.Errorf("by = %q, want api", by)
	}
}

// TestOpenAPIDocumentsEveryRoute keeps the hand-written document honest:
// every path the server answers is in it, and it is valid JSON.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	rec := tb.do(t, "GET", "/api/v1/openapi.json", "")
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	for _, pattern := range tb.server.Routes() {
		method, full, _ := strings.Cut(pattern, " ")
		route := strings.ToLower(method) + " " + strings.TrimPrefix(full, "/api/v1")
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("openapi.json lacks %s", route)
		}
		// And the server answers it with something other than "no such route".
		target := "/api/v1" + strings.NewReplacer("{id}", "3", "{name}", "extract").Replace(path)
		if rec := tb.do(t, strings.ToUpper(method), target, ""); strings.Contains(rec.Body.String(), "no such route") {
			t.Errorf("server does not serve %s", route)
		}
	}
}

// TestArtifacts: POST a named artifact, list them by job and period,
// newest first, a page at a time with the Link header.
func TestArtifacts(t *testing.T) {
	tb := setup(t)
	for _, body := range []string{
		`{"url": "file:///data/2026-11-26/report.csv", "name": "report"}`,
		`{"url": "s3://bucket/2026-11-26/a.csv"}`,
		`{"url": "table:warehouse.sales_daily"}`,
	} {
		if rec := tb.do(t, "POST", "/api/v1/runs/3/artifacts", body); rec.Code != http.StatusCreated {
			t.Fatalf("POST artifacts %s = %d %s", body, rec.Code, rec.Body)
		}
	}
	rec := tb.do(t, "GET", "/api/v1/artifacts?job=load-sales&period=daily/2026-11-26&limit=2", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET artifacts = %d %s", rec.Code, rec.Body)
	}
	var page []talon.Artifact
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].URL != "table:warehouse.sales_daily" || page[1].URL != "s3://bucket/2026-11-26/a.csv" {
		t.Fatalf("first page = %+v", page)
	}
	if f := tb.backend.Last().ArtifactFilter; f.Job != "load-sales" || f.Period != "daily/2026-11-26" || f.Limit != 2 {
		t.Errorf("filter = %+v", f)
	}
	link := rec.Header().Get("Link")
	want := fmt.Sprintf(`</api/v1/artifacts?before=%d&job=load-sales&limit=2&period=daily%%2F2026-11-26>; rel="next"`, page[1].ID)
	if link != want {
		t.Fatalf("Link = %q, want %q", link, want)
	}
	next := strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	rec = tb.do(t, "GET", next, "")
	page = nil
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].Name != "report" || page[0].RunID != 3 || page[0].Job != "load-sales" {
		t.Fatalf("second page = %+v", page)
	}
	if rec.Header().Get("Link") != "" {
		t.Errorf("the last page has a Link: %q", rec.Header().Get("Link"))
	}
	rec = tb.do(t, "GET", "/api/v1/artifacts?job=extract", "")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("GET artifacts of a job without any = %d %s, want []", rec.Code, rec.Body)
	}
}
