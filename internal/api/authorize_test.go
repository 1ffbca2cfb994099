package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/store/sqlite"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
)

// knownPerms are the permissions of auth's table; a route needing any
// other is decided by no row.
var knownPerms = []auth.Permission{auth.PermPublic, auth.PermRead, auth.PermReadRun, auth.PermReport, auth.PermOperate, auth.PermAgent, auth.PermAdmin}

// TestEveryRouteHasAPermission enumerates the router: each route names a
// permission of the table (NewServer refuses to start with an empty one).
func TestEveryRouteHasAPermission(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	infos := tb.server.RouteInfos()
	if len(infos) != len(tb.server.Routes()) {
		t.Fatalf("%d route infos for %d routes", len(infos), len(tb.server.Routes()))
	}
	for _, ri := range infos {
		if !slices.Contains(knownPerms, ri.Perm) {
			t.Errorf("%s needs %q, which is not in the permission table", ri.Pattern, ri.Perm)
		}
	}
}

// TestOpenAPINamesEachPermission: openapi.json says which permission
// each operation needs, as the route table does.
func TestOpenAPINamesEachPermission(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Perm auth.Permission `json:"x-talon-permission"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(tb.do(t, "GET", "/api/v1/openapi.json", "").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, ri := range tb.server.RouteInfos() {
		method, path, _ := strings.Cut(ri.Pattern, " ")
		if got := doc.Paths[strings.TrimPrefix(path, "/api/v1")][strings.ToLower(method)].Perm; got != ri.Perm {
			t.Errorf("openapi.json: %s needs %q, the route table says %q", ri.Pattern, got, ri.Perm)
		}
	}
}

func sum(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// runTokens stands in for the engine's run-scoped tokens: "run-N" names
// run N.
type runTokens struct{}

func (runTokens) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	var id int64
	if _, err := fmt.Sscanf(token, "run-%d", &id); err != nil {
		return auth.Principal{}, auth.ErrUnknownToken
	}
	return auth.Principal{Name: fmt.Sprintf("run %d", id), Role: auth.RoleRun, Run: id, Source: "run"}, nil
}

// authChain is the chain serve builds: run tokens first, then the
// config's tokens (the real source).
func authChain(t *testing.T) *auth.Chain {
	t.Helper()
	var entries []auth.TokenEntry
	for _, r := range auth.Roles {
		entries = append(entries, auth.TokenEntry{Name: "the-" + string(r), Role: r, TokenSHA256: sum("tok-" + string(r))})
	}
	toks, err := auth.NewTokens(entries)
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewChain(runTokens{}, toks)
}

// wantAllowed is the permission table written out by hand, so the matrix
// checks the table as well as its enforcement: caller → permissions it
// has on run 3.
var wantAllowed = map[string][]auth.Permission{
	"anonymous":   {auth.PermPublic},
	"viewer":      {auth.PermPublic, auth.PermRead, auth.PermReadRun},
	"operator":    {auth.PermPublic, auth.PermRead, auth.PermReadRun, auth.PermReport, auth.PermOperate},
	"admin":       knownPerms,
	"agent":       {auth.PermPublic, auth.PermAgent},
	"run 3":       {auth.PermPublic, auth.PermReadRun, auth.PermReport},
	"another run": {auth.PermPublic},
}

// callers are who the matrix calls as, with the token each sends.
var callers = []struct{ name, token string }{
	{"anonymous", ""},
	{"viewer", "tok-viewer"},
	{"operator", "tok-operator"},
	{"admin", "tok-admin"},
	{"agent", "tok-agent"},
	{"run 3", "run-3"},
	{"another run", "run-2"},
}

// routeRequest is a request to pattern about run 3 and job extract, with
// a body the route accepts.
// matrixFeed is an event feed over a real, empty SQLite store, so that
// the event stream answers past authorization in the matrix.
func matrixFeed(t *testing.T) *feed.Hub {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	hub := feed.New(st, discard(), feed.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		hub.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return hub
}

func routeRequest(t *testing.T, pattern string) *http.Request {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.NewReplacer("{id}", "3", "{name}", "extract").Replace(path)
	body := ""
	switch {
	case strings.HasSuffix(path, "/artifacts"):
		body = `{"url": "https://example.com/report.csv"}`
	case strings.HasSuffix(path, "/progress"):
		body = `{"percent": 50}`
	}
	var req *http.Request
	if body != "" {
		req = httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequestWithContext(t.Context(), method, path, nil)
	}
	return req
}

// TestRoleRouteMatrix calls every route of the table as every kind of
// caller, with authentication configured: no token → 401 (public routes
// excepted), a role without the route's permission → 403, one with it →
// past authorization (2xx, or a 4xx of the route's own, never 401/403).
// A run's token may read and report for its own run only.
func TestRoleRouteMatrix(t *testing.T) {
	t.Parallel()
	hub := matrixFeed(t)
	for _, ri := range setup(t).server.RouteInfos() {
		for _, c := range callers {
			t.Run(ri.Pattern+" as "+c.name, func(t *testing.T) {
				t.Parallel()
				tb := setup(t, api.WithAuthorizer(api.BearerAuth(authChain(t), false, discard())), api.WithFeed(hub))
				req := routeRequest(t, ri.Pattern)
				if strings.HasSuffix(ri.Pattern, "/events") {
					// A stream lasts until its client leaves: leave soon.
					ctx, cancel := context.WithTimeout(req.Context(), 200*time.Millisecond)
					defer cancel()
					req = req.WithContext(ctx)
				}
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				rec := httptest.NewRecorder()
				tb.server.ServeHTTP(rec, req)
				allowed := slices.Contains(wantAllowed[c.name], ri.Perm)
				switch {
				case allowed && (rec.Code == 401 || rec.Code == 403 || rec.Code >= 500):
					t.Errorf("%d %s, want past authorization", rec.Code, rec.Body)
				case !allowed && c.token == "" && rec.Code != 401:
					t.Errorf("%d %s, want 401", rec.Code, rec.Body)
				case !allowed && c.token != "" && rec.Code != 403:
					t.Errorf("%d %s, want 403", rec.Code, rec.Body)
				}
				if !allowed {
					code, _ := errorOf(t, rec)
					if want := map[bool]string{true: "unauthorized", false: "forbidden"}[c.token == ""]; code != want {
						t.Errorf("code %q, want %q", code, want)
					}
				}
			})
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestBearerAuth covers what the matrix does not: the anonymous rule,
// tokens not known or rejected, the words of a 403, and who a cancel is
// recorded as.
func TestBearerAuth(t *testing.T) {
	t.Parallel()
	type call struct {
		method, target, auth, user string
	}
	tests := []struct {
		name      string
		anonymous bool
		call      call
		status    int
		msg       string // the error message, when an error
		by        string // who the cancel is recorded as
	}{
		{name: "anonymous allowed: admin, named by the user header", anonymous: true,
			call: call{"POST", "/api/v1/runs/3/cancel", "", "carol"}, status: 200, by: "carol"},
		{name: "anonymous allowed, but a token presented is checked", anonymous: true,
			call: call{"GET", "/api/v1/jobs", "Bearer nope", ""}, status: 401, msg: "token not known"},
		{name: "a token's role applies even when anonymous is allowed", anonymous: true,
			call: call{"POST", "/api/v1/reload", "Bearer tok-viewer", ""}, status: 403,
			msg: "the-viewer (role viewer) may not reload or administer the server; that needs role admin"},
		{name: "token not known", call: call{"GET", "/api/v1/jobs", "Bearer nope", ""}, status: 401, msg: "token not known"},
		{name: "no token", call: call{"GET", "/api/v1/jobs", "", "carol"}, status: 401, msg: "no token: send Authorization: Bearer TOKEN"},
		{name: "another scheme", call: call{"GET", "/api/v1/jobs", "Basic dXNlcjpwYXNz", ""}, status: 401, msg: "Authorization header: want Bearer TOKEN"},
		{name: "viewer may not cancel", call: call{"POST", "/api/v1/runs/3/cancel", "Bearer tok-viewer", ""}, status: 403,
			msg: "the-viewer (role viewer) may not trigger, cancel or retry runs; that needs role operator or admin"},
		{name: "operator cancels as itself, whatever the user header says", call: call{"POST", "/api/v1/runs/3/cancel", "Bearer tok-operator", "root"}, status: 200, by: "the-operator"},
		{name: "a run token on another run", call: call{"POST", "/api/v1/runs/3/progress", "Bearer run-2", ""}, status: 403,
			msg: "run 2 (role run) may not report progress and artifacts of this run: a run's token may only read and report for its own run (2); that needs role operator or admin"},
		{name: "the scheme is case-insensitive", call: call{"GET", "/api/v1/jobs", "bearer tok-viewer", ""}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, api.WithAuthorizer(api.BearerAuth(authChain(t), tt.anonymous, discard())))
			req := httptest.NewRequestWithContext(t.Context(), tt.call.method, tt.call.target, nil)
			if tt.call.auth != "" {
				req.Header.Set("Authorization", tt.call.auth)
			}
			if tt.call.user != "" {
				req.Header.Set(api.UserHeader, tt.call.user)
			}
			rec := httptest.NewRecorder()
			tb.server.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			if tt.msg != "" {
				if _, msg := errorOf(t, rec); msg != tt.msg {
					t.Errorf("message %q, want %q", msg, tt.msg)
				}
			}
			if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.by != "" && tb.backend.Last().By != tt.by {
				t.Errorf("by %q, want %q", tb.backend.Last().By, tt.by)
			}
		})
	}
}

// TestHealthzHidesDetailsFromAnonymous: healthz is public, so a caller
// without a token learns that the server is unwell, not where its
// database is; a caller with a token gets the detail.
func TestHealthzHidesDetailsFromAnonymous(t *testing.T) {
	t.Parallel()
	tb := setup(t, api.WithAuthorizer(api.BearerAuth(authChain(t), false, discard())))
	tb.backend.HealthErr = talon.Errorf(talon.EUNAVAILABLE, "state store db.internal:5432: connection refused")
	rec := tb.do(t, "GET", "/api/v1/healthz", "")
	if _, msg := errorOf(t, rec); rec.Code != 503 || strings.Contains(msg, "db.internal") {
		t.Errorf("anonymous: %d %q, want 503 without the detail", rec.Code, msg)
	}
	req := httptest.NewRequestWithContext(t.Context(), "GET", "/api/v1/healthz", nil)
	req.Header.Set("Authorization", "Bearer tok-viewer")
	rec = httptest.NewRecorder()
	tb.server.ServeHTTP(rec, req)
	if _, msg := errorOf(t, rec); rec.Code != 503 || !strings.Contains(msg, "db.internal") {
		t.Errorf("viewer: %d %q, want 503 with the detail", rec.Code, msg)
	}
	tb.backend.HealthErr = nil
	if rec := tb.do(t, "GET", "/api/v1/healthz", ""); rec.Code != 200 {
		t.Errorf("healthy, anonymous: %d", rec.Code)
	}
}
