package api_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/api/apitest"
	"github.com/talonhq/talon/internal/auth"
)

// testPages is a page set of two routes, a read and a state change,
// that says who it served.
type testPages struct{ sessions *api.Sessions }

func (p testPages) Pages() []api.Page {
	say := func(w http.ResponseWriter, r *http.Request) error {
		pr, _ := api.PrincipalOf(r.Context())
		fmt.Fprintf(w, "ok %s csrf=%s", pr.Name, p.sessions.Token(w, r))
		return nil
	}
	return []api.Page{
		{Pattern: "GET /page", Perm: auth.PermRead, Handler: say},
		{Pattern: "POST /page", Perm: auth.PermOperate, Handler: say},
	}
}

func (testPages) WriteError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, "page error %s: %s", code, msg)
}

// TestSessions: the session cookie is a credential for reads, and for a
// state change only with the CSRF token; a browser's cross-site or
// cross-origin state change is refused on every route.
func TestSessions(t *testing.T) {
	t.Parallel()
	sessions := api.NewSessions([]byte(strings.Repeat("s", 32)), false)
	newServer := func(anonymous bool) *api.Server {
		b := apitest.New()
		b.Add(talon.Run{Job: "extract", Period: "daily/2026-11-26", State: talon.StateBlocked}, nil, nil)
		return api.NewServer(b, slog.New(slog.DiscardHandler),
			api.WithAuthorizer(api.BearerAuth(authChain(t), anonymous, slog.New(slog.DiscardHandler))),
			api.WithSessions(sessions), api.WithPages(testPages{sessions}))
	}
	const withAuth, anon = false, true
	tokenFor := func(session string) string { return sessions.TokenFor(session) }

	tests := []struct {
		name    string
		srv     bool // anonymous
		method  string
		target  string
		cookie  string // session cookie
		browser string // CSRF cookie
		csrf    string // form field
		header  http.Header
		want    int
		body    string
	}{
		{name: "cookie reads a page", srv: withAuth, method: "GET", target: "/page", cookie: "tok-viewer", want: 200, body: "ok the-viewer"},
		{name: "cookie reads the API", srv: withAuth, method: "GET", target: "/api/v1/runs", cookie: "tok-viewer", want: 200},
		{name: "no cookie: 401", srv: withAuth, method: "GET", target: "/page", want: 401, body: "page error unauthorized"},
		{name: "unknown cookie: 401", srv: withAuth, method: "GET", target: "/page", cookie: "nope", want: 401, body: "log in again"},
		{name: "post without token", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", want: 403, body: "no CSRF token"},
		{name: "post with another's token", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", csrf: tokenFor("tok-admin"), want: 403, body: "does not match"},
		{name: "post with its token", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", csrf: tokenFor("tok-operator"), want: 200, body: "ok the-operator"},
		{name: "viewer posts with its token", srv: withAuth, method: "POST", target: "/page", cookie: "tok-viewer", csrf: tokenFor("tok-viewer"), want: 403, body: "may not trigger"},
		{name: "token in a header", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", header: http.Header{api.CSRFHeader: {tokenFor("tok-operator")}}, want: 200},
		{name: "cross-site", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", csrf: tokenFor("tok-operator"), header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, want: 403, body: "cross-site request refused"},
		{name: "same-site, other origin", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", csrf: tokenFor("tok-operator"), header: http.Header{"Sec-Fetch-Site": {"same-site"}}, want: 403, body: "cross-site"},
		{name: "other origin", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", csrf: tokenFor("tok-operator"), header: http.Header{"Origin": {"http://evil.example"}}, want: 403, body: "cross-origin request refused"},
		{name: "same origin", srv: withAuth, method: "POST", target: "/page", cookie: "tok-operator", csrf: tokenFor("tok-operator"), header: http.Header{"Origin": {"http://example.com"}, "Sec-Fetch-Site": {"same-origin"}}, want: 200},
		{name: "API post with cookie, no token", srv: withAuth, method: "POST", target: "/api/v1/runs/1/cancel", cookie: "tok-operator", want: 403, body: "no CSRF token"},
		{name: "API post with cookie and token", srv: withAuth, method: "POST", target: "/api/v1/runs/1/cancel", cookie: "tok-operator", header: http.Header{api.CSRFHeader: {tokenFor("tok-operator")}}, want: 200},
		{name: "API post with bearer token", srv: withAuth, method: "POST", target: "/api/v1/runs/1/cancel", header: http.Header{"Authorization": {"Bearer tok-operator"}}, want: 200},
		{name: "API post with bearer token, cross-site", srv: withAuth, method: "POST", target: "/api/v1/runs/1/cancel", header: http.Header{"Authorization": {"Bearer tok-operator"}, "Sec-Fetch-Site": {"cross-site"}}, want: 403},
		{name: "anonymous page post without token", srv: anon, method: "POST", target: "/page", want: 403, body: "no CSRF token"},
		{name: "anonymous page post with its browser's token", srv: anon, method: "POST", target: "/page", browser: "b1", csrf: "from-get", want: 200, body: "ok api"},
		{name: "anonymous page post with another browser's token", srv: anon, method: "POST", target: "/page", browser: "b2", csrf: "from-get-b1", want: 403, body: "does not match"},
		{name: "anonymous API post from a script", srv: anon, method: "POST", target: "/api/v1/runs/1/cancel", want: 200},
		{name: "anonymous API post cross-site", srv: anon, method: "POST", target: "/api/v1/runs/1/cancel", header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(tt.srv)
			csrf := tt.csrf
			if csrf == "from-get" || csrf == "from-get-b1" {
				// The token a page gave the browser with CSRF cookie b1.
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/page", nil)
				req.AddCookie(&http.Cookie{Name: api.CSRFCookie, Value: "b1"})
				srv.ServeHTTP(rec, req)
				_, csrf, _ = strings.Cut(rec.Body.String(), "csrf=")
			}
			form := url.Values{}
			if csrf != "" {
				form.Set(api.CSRFField, csrf)
			}
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(form.Encode()))
			if tt.method == "POST" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for k, vs := range tt.header {
				req.Header.Set(k, vs[0])
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: tt.cookie})
			}
			if tt.browser != "" {
				req.AddCookie(&http.Cookie{Name: api.CSRFCookie, Value: tt.browser})
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%s %s: %d %s; want %d with %q", tt.method, tt.target, rec.Code, rec.Body, tt.want, tt.body)
			}
		})
	}
}

// TestSessionsSetsCSRFCookie: a browser without cookies gets a CSRF
// cookie (HttpOnly, SameSite=Strict) with its first page.
func TestSessionsSetsCSRFCookie(t *testing.T) {
	t.Parallel()
	sessions := api.NewSessions([]byte(strings.Repeat("s", 32)), true)
	srv := api.NewServer(apitest.New(), slog.New(slog.DiscardHandler), api.WithSessions(sessions), api.WithPages(testPages{sessions}))
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/page", nil))
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != api.CSRFCookie || !c[0].HttpOnly || !c[0].Secure || c[0].SameSite != http.SameSiteStrictMode || c[0].Value == "" {
		t.Fatalf("cookies = %+v, want one HttpOnly, Secure, SameSite=Strict CSRF cookie", c)
	}
}

// TestEveryPageHasAPermission: pages name permissions of the table too.
func TestEveryPageHasAPermission(t *testing.T) {
	t.Parallel()
	sessions := api.NewSessions([]byte(strings.Repeat("s", 32)), false)
	srv := api.NewServer(apitest.New(), slog.New(slog.DiscardHandler), api.WithSessions(sessions), api.WithPages(testPages{sessions}))
	if len(srv.PageInfos()) != 2 {
		t.Fatalf("page infos = %v", srv.PageInfos())
	}
}
