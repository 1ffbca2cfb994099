// Package web is Talon's dashboard: server-rendered pages served by
// `talon serve` on the API's port (docs/dashboard.md).
//
// Every page is a route of the API's server (api.WithPages): the same
// Authorizer, permission table, audit and CSRF checks as the API, so a
// viewer reads and an operator also cancels, retries, marks, triggers and
// pauses, exactly as through the API. Pages are html/template (every
// value is escaped for where it lands); the CSS and the little JavaScript
// are files embedded in the binary, served from /static/, so the
// Content-Security-Policy forbids every inline script and style. Live
// updates come from the API's event stream (GET /api/v1/events).
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/view"
)

// Reader is what the pages read: the API's reads and the dashboard's own
// (*query.Service implements it).
type Reader interface {
	api.Reader
	Grid(ctx context.Context, f view.GridFilter) (view.Grid, error)
	JobDetail(ctx context.Context, name string, fires, history int) (view.JobDetail, error)
	Timeline(ctx context.Context, key string) (view.Timeline, error)
	Upstreams(ctx context.Context, r talon.Run) ([]view.Upstream, error)
}

// Backend is what the dashboard serves: reads, and the API's commands.
type Backend interface {
	Reader
	api.Commander
}

// Join is the Backend that reads through r and acts through c.
func Join(r Reader, c api.Commander) Backend {
	return struct {
		Reader
		api.Commander
	}{r, c}
}

//go:embed static templates
var files embed.FS

// Dashboard serves the pages. It is an api.Pages.
type Dashboard struct {
	b        Backend
	sessions *api.Sessions
	// login checks the tokens of the login form: the server's auth chain.
	// Nil on a server without auth:, which has no logins.
	login  auth.Source
	logger *slog.Logger

	tmpl *template.Template
	// static is each embedded asset with its content hash, which its URL
	// carries (?v=HASH) so it can be cached for good.
	static map[string]asset
	bufs   sync.Pool
}

type asset struct {
	body  []byte
	hash  string
	ctype string
}

var _ api.Pages = (*Dashboard)(nil)

// New returns the dashboard of b. sessions are the server's (the same
// passed to api.WithSessions); login is the auth chain that checks the
// login form's tokens, nil when the server has no auth: (no login then).
func New(b Backend, sessions *api.Sessions, login auth.Source, logger *slog.Logger) (*Dashboard, error) {
	d := &Dashboard{b: b, sessions: sessions, login: login, logger: logger, static: map[string]asset{}}
	d.bufs.New = func() any { return new(bytes.Buffer) }
	err := fs.WalkDir(files, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := "application/octet-stream"
		switch path.Ext(p) {
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		d.static[strings.TrimPrefix(p, "static/")] = asset{body: body, hash: hex.EncodeToString(sum[:8]), ctype: ct}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	d.tmpl, err = template.New("").Funcs(d.funcs()).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	return d, nil
}

// Pages lists the dashboard's routes with the permission each needs (the
// API's table: what a viewer may read, an operator may do), and the audit
// action of each state change, named as the API's twin names it.
func (d *Dashboard) Pages() []api.Page {
	return []api.Page{
		{Pattern: "GET /{$}", Perm: auth.PermRead, Handler: d.grid},
		{Pattern: "GET /runs/{id}", Perm: auth.PermRead, Handler: d.run},
		{Pattern: "GET /jobs/{name}", Perm: auth.PermRead, Handler: d.job},
		{Pattern: "GET /periods/{key...}", Perm: auth.PermRead, Handler: d.period},
		{Pattern: "GET /resources", Perm: auth.PermRead, Handler: d.resources},
		{Pattern: "GET /static/{file}", Perm: auth.PermPublic, Handler: d.asset},
		{Pattern: "GET /login", Perm: auth.PermPublic, Handler: d.loginPage},
		{Pattern: "POST /login", Perm: auth.PermPublic, Handler: d.loginPost},
		{Pattern: "POST /logout", Perm: auth.PermPublic, Handler: d.logout},
		{Pattern: "POST /runs/{id}/cancel", Perm: auth.PermOperate, Audit: "cancel", Handler: d.cancel},
		{Pattern: "POST /runs/{id}/retry", Perm: auth.PermOperate, Audit: "retry", Handler: d.retry},
		{Pattern: "POST /runs/{id}/mark", Perm: auth.PermOperate, Audit: "mark", Handler: d.mark},
		{Pattern: "POST /jobs/{name}/trigger", Perm: auth.PermOperate, Audit: "trigger", Handler: d.trigger},
		{Pattern: "POST /jobs/{name}/pause", Perm: auth.PermOperate, Audit: "pause", Handler: d.pause},
		{Pattern: "POST /jobs/{name}/resume", Perm: auth.PermOperate, Audit: "resume", Handler: d.resume},
	}
}

// CSP is the Content-Security-Policy of every page: nothing but the
// server's own files, no inline script or style, no framing.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secure sets the headers every page answer carries.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// page is what every page template gets.
type page struct {
	Title string
	// Nav is the section the page belongs to (grid, resources).
	Nav string
	// User is who is looking; Operate whether they may change things;
	// Session whether they logged in (so may log out).
	User    auth.Principal
	Operate bool
	Session bool
	CSRF    string
	// Events is the query of the event stream that refreshes the page
	// ("" for none).
	Events string
	// Notice is a message of the action that led here.
	Notice string
	Data   any
}

func (d *Dashboard) newPage(w http.ResponseWriter, r *http.Request, title string, data any) *page {
	p, _ := api.PrincipalOf(r.Context())
	_, session := sessionOf(r)
	return &page{
		Title: title, User: p, Operate: p.Allows(auth.PermOperate, 0), Session: session,
		CSRF: d.sessions.Token(w, r), Notice: d.takeNotice(w, r), Data: data,
	}
}

// noticeCookie carries what an action did to the page it redirects to,
// once. A cookie rather than the URL, so that a link cannot make a page
// say something Talon did not.
const noticeCookie = "talon_notice"

// takeNotice reads the notice of the action that led here, and deletes it.
func (d *Dashboard) takeNotice(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(noticeCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	http.SetCookie(w, d.sessions.Cookie(noticeCookie, "", -1))
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return v
}

func sessionOf(r *http.Request) (string, bool) {
	c, err := r.Cookie(api.SessionCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// render writes template name with p, or an error if it fails (before
// anything is written, since it renders into a buffer first).
func (d *Dashboard) render(w http.ResponseWriter, status int, name string, p *page) error {
	buf := d.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer d.bufs.Put(buf)
	if err := d.tmpl.ExecuteTemplate(buf, name, p); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	secure(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteError answers a failed page request: a reader without a session
// is sent to the login page; anyone else gets a page saying what went
// wrong.
func (d *Dashboard) WriteError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if status == http.StatusUnauthorized && d.login != nil && r.Method == http.MethodGet {
		q := url.Values{"next": {r.URL.RequestURI()}}
		if _, had := sessionOf(r); had {
			q.Set("why", msg)
		}
		secure(w)
		http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
		return
	}
	p := d.newPage(w, r, http.StatusText(status), errorData{Status: status, Code: code, Message: msg})
	if err := d.render(w, status, "error.html", p); err != nil {
		d.logger.Error("error page", "err", err)
		secure(w)
		http.Error(w, msg, status)
	}
}

type errorData struct {
	Status  int
	Code    string
	Message string
}

func (d *Dashboard) asset(w http.ResponseWriter, r *http.Request) error {
	a, ok := d.static[r.PathValue("file")]
	if !ok {
		return talon.Errorf(talon.ENOTFOUND, "no such file: %s", r.URL.Path)
	}
	secure(w)
	w.Header().Set("Content-Type", a.ctype)
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("ETag", `"`+a.hash+`"`)
	if r.Header.Get("If-None-Match") == `"`+a.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	_, err := w.Write(a.body)
	return err
}

// assetURL is the URL of an embedded asset, with its hash.
func (d *Dashboard) assetURL(name string) string {
	return "/static/" + name + "?v=" + d.static[name].hash
}

// localPath keeps a redirect target on this server: a path, not a URL
// of another host ("//evil", "/\evil" or "https://…").
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

// redirect sends the browser on after a state change (303: it gets the
// page again), with a notice for that page.
func (d *Dashboard) redirect(w http.ResponseWriter, r *http.Request, to, notice string) {
	if notice != "" {
		http.SetCookie(w, d.sessions.Cookie(noticeCookie, url.QueryEscape(notice), 60))
	}
	secure(w)
	http.Redirect(w, r, to, http.StatusSeeOther)
}
