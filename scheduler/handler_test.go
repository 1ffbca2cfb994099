package scheduler_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/web"
	"github.com/talonhq/talon/scheduler"
)

func sha(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// routes lists every route Handler serves, the API's and the
// dashboard's, with the permission each needs: enumerated from the
// servers themselves, so a route added later is covered.
func routes(t *testing.T) []api.RouteInfo {
	t.Helper()
	out := api.NewServer(nil, slog.New(slog.DiscardHandler)).RouteInfos()
	d, err := web.New(nil, api.NewSessions(make([]byte, 32), false), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Pages() {
		out = append(out, api.RouteInfo{Pattern: p.Pattern, Perm: p.Perm})
	}
	return out
}

// fill makes a request path of a route pattern.
func fill(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	r := strings.NewReplacer("{id}", "1", "{name}", "noop", "{key...}", "daily/2026-01-01", "{file}", "talon.css", "{$}", "")
	return method, r.Replace(path)
}

type client struct {
	t    *testing.T
	base string
}

// do sends a request with token (none when empty) and returns the
// status and body; redirects are not followed.
func (c client) do(method, path, token, body string) (int, http.Header, string) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// Bounded: a route that wrongly let the request in may stream
	// (events, a followed log) rather than answer.
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, path, err)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestHandlerAuth: Handler mounted on the program's own mux, beside the
// program's routes, answers with the auth configured: no route but the
// public ones without a token, a role's permissions with one, and the
// program's own routes untouched.
func TestHandlerAuth(t *testing.T) {
	stores(t, func(t *testing.T, state string) {
		tokens := mustTokens(t,
			scheduler.TokenEntry{Name: "vera", Role: scheduler.RoleViewer, TokenSHA256: sha("viewer-token")},
			scheduler.TokenEntry{Name: "otto", Role: scheduler.RoleOperator, TokenSHA256: sha("operator-token")})
		s := start(t, scheduler.Config{
			State:    state,
			Schedule: scheduler.Schedule{Jobs: []talon.Job{{Name: "noop", Executor: "inprocess"}}},
			Auth:     []scheduler.AuthSource{tokens},
		})
		mux := http.NewServeMux()
		mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello from the program") })
		mux.Handle("/", s.Handler())
		srv := httptest.NewServer(mux)
		defer srv.Close()
		c := client{t: t, base: srv.URL}

		for _, ri := range routes(t) {
			method, path := fill(ri.Pattern)
			status, hdr, body := c.do(method, path, "", "")
			switch {
			case ri.Perm == auth.PermPublic:
				if status == http.StatusUnauthorized {
					t.Errorf("%s (public): 401 without a token", ri.Pattern)
				}
			case strings.HasPrefix(path, api.Prefix):
				if status != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) || hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("%s without a token: %d %s, want 401 unauthorized", ri.Pattern, status, body)
				}
			case method == http.MethodGet:
				// A page sends a browser to the login page.
				if status != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/login?") {
					t.Errorf("%s without a token: %d (Location %q), want 303 to /login", ri.Pattern, status, hdr.Get("Location"))
				}
			default:
				if status != http.StatusUnauthorized && status != http.StatusForbidden {
					t.Errorf("%s without a token: %d %s, want 401 or 403", ri.Pattern, status, body)
				}
			}
			if status/100 == 2 && ri.Perm != auth.PermPublic {
				t.Errorf("%s answered %d without a token", ri.Pattern, status)
			}
		}

		if status, _, body := c.do("GET", "/hello", "", ""); status != http.StatusOK || body != "hello from the program" {
			t.Errorf("the program's own route: %d %q", status, body)
		}
		if status, _, _ := c.do("GET", "/api/v1/healthz", "", ""); status != http.StatusOK {
			t.Errorf("healthz without a token: %d", status)
		}
		if status, _, _ := c.do("GET", "/api/v1/jobs", "no-such-token", ""); status != http.StatusUnauthorized {
			t.Errorf("unknown token: %d, want 401", status)
		}
		if status, _, body := c.do("GET", "/api/v1/jobs", "viewer-token", ""); status != http.StatusOK || !strings.Contains(body, `"name":"noop"`) {
			t.Errorf("viewer reads jobs: %d %s", status, body)
		}
		if status, _, body := c.do("POST", "/api/v1/jobs/noop/trigger", "viewer-token", "{}"); status != http.StatusForbidden {
			t.Errorf("viewer triggers: %d %s, want 403", status, body)
		}
		status, _, body := c.do("POST", "/api/v1/jobs/noop/trigger", "operator-token", "{}")
		if status != http.StatusCreated {
			t.Fatalf("operator triggers: %d %s, want 201", status, body)
		}
		var r talon.Run
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		if got := wait(t, s, r.ID); got.State != talon.StateSucceeded {
			t.Errorf("triggered run = %s %q", got.State, got.Reason)
		}
	})
}

// Without Config.Auth and without Anonymous, the API refuses every
// request but healthz.
func TestHandlerWithoutAuth(t *testing.T) {
	s := start(t, scheduler.Config{
		State:    "sqlite:" + t.TempDir() + "/talon.db",
		Schedule: scheduler.Schedule{Jobs: []talon.Job{{Name: "noop", Executor: "inprocess"}}},
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := client{t: t, base: srv.URL}
	if status, _, body := c.do("GET", "/api/v1/jobs", "", ""); status != http.StatusUnauthorized {
		t.Errorf("GET jobs: %d %s, want 401", status, body)
	}
	if status, _, body := c.do("POST", "/api/v1/jobs/noop/trigger", "", "{}"); status != http.StatusUnauthorized {
		t.Errorf("POST trigger: %d %s, want 401", status, body)
	}
	if status, _, _ := c.do("GET", "/api/v1/healthz", "", ""); status != http.StatusOK {
		t.Errorf("healthz: %d", status)
	}
}
