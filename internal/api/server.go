package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/feed"
)

// Error codes the HTTP layer adds to talon's. Unauthorized (no token, or
// one not accepted) and forbidden (a role that may not use the route)
// come from the Authorizer; method_not_allowed answers a known path asked
// with a method it does not take (its Allow header lists those it does);
// request_timeout answers a request whose body did not arrive within the
// server's ReadTimeout.
const (
	EUNAUTHORIZED     = "unauthorized"
	EFORBIDDEN        = "forbidden"
	EMETHODNOTALLOWED = "method_not_allowed"
	EREQUESTTIMEOUT   = "request_timeout"
)

// Option configures a Server.
type Option func(*Server)

// WithAuthorizer sets the function every request passes through before
// its handler; the default is AllowAll.
func WithAuthorizer(a Authorizer) Option {
	return func(s *Server) { s.authorize = a }
}

// Server serves the API of a Backend. It is an http.Handler.
type Server struct {
	backend   Backend
	logger    *slog.Logger
	authorize Authorizer
	mux       *http.ServeMux

	// Request ids are a per-process random prefix and a counter: unique
	// enough to find a request's log line, and cheap.
	idPrefix string
	idNext   atomic.Uint64

	// writeTimeout bounds each write of a streamed answer (NewHTTPServer
	// sets it from its limits; zero: unbounded). closing is closed when
	// the HTTP server shuts down, to end streams that would otherwise
	// last as long as the runs they follow.
	writeTimeout time.Duration
	closing      chan struct{}
	closeOnce    sync.Once

	// feed is the process's event feed (WithFeed), or nil.
	feed *feed.Hub
	// pages are the dashboard's routes (WithPages), served through the
	// same wrapper as the API's; sessions check their browsers' CSRF
	// tokens (WithSessions).
	pages    Pages
	sessions *Sessions
	// agents serves the agent protocol (WithAgents), or nil.
	agents Agents
}

// closeStreams ends the streams being served, and refuses new ones.
func (s *Server) closeStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// CloseStreams ends the streams being served (event streams, followed
// logs), and refuses new ones. An HTTPServer does it when it shuts down;
// a program that serves s on an http.Server of its own calls it when the
// scheduler stops, so those requests end rather than wait for runs.
func (s *Server) CloseStreams() { s.closeStreams() }

// WithWriteTimeout bounds each write of a streamed answer, as
// NewHTTPServer does from its limits, for a server served by another
// http.Server: a client that stops reading is cut off after d.
func WithWriteTimeout(d time.Duration) Option {
	return func(s *Server) { s.writeTimeout = d }
}

// NewServer returns a Server for b that logs to logger.
func NewServer(b Backend, logger *slog.Logger, opts ...Option) *Server {
	s := &Server{
		backend:   b,
		logger:    logger,
		authorize: AllowAll,
		mux:       http.NewServeMux(),
		closing:   make(chan struct{}),
	}
	var p [4]byte
	_, _ = rand.Read(p[:]) // never fails (crypto/rand documents it)
	s.idPrefix = hex.EncodeToString(p[:])
	for _, o := range opts {
		o(s)
	}
	s.routes()
	return s
}

// route is one entry of the API: its pattern, who may call it, and what
// it does.
type route struct {
	pattern string
	perm    auth.Permission
	handler handlerFunc
	// page marks a route of Pages: a state change needs the CSRF token,
	// and errors are written by Pages.WriteError.
	page bool
}

// handlerFunc is a handler that returns its error, so that one wrapper
// maps errors to statuses.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Prefix is the path every route of the API lives under.
const Prefix = "/api/v1/"

func (s *Server) routes() {
	table := s.routeTable()
	if s.pages != nil {
		if s.sessions == nil {
			panic("api: WithPages without WithSessions: pages' state changes could not be checked")
		}
		for _, p := range s.pages.Pages() {
			h := handlerFunc(p.Handler)
			if p.Audit != "" {
				h = s.audited(p.Audit, h)
			}
			table = append(table, route{pattern: p.Pattern, perm: p.Perm, handler: h, page: true})
		}
	}
	for _, rt := range table {
		if rt.perm == "" {
			// A route without a row in the permission table would be
			// decided by no one: refuse to start (a bug in the table).
			panic("api: route " + rt.pattern + " names no permission")
		}
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
}

// RouteInfo is a route and the permission it needs.
type RouteInfo struct {
	Pattern string
	Perm    auth.Permission
}

// RouteInfos lists every route with the permission it needs, for tests
// and documentation that must cover every route.
func (s *Server) RouteInfos() []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.routeTable() {
		out = append(out, RouteInfo{Pattern: rt.pattern, Perm: rt.perm})
	}
	return out
}

// Routes lists the patterns of every route ("GET /api/v1/jobs", …).
func (s *Server) Routes() []string {
	var out []string
	for _, rt := range s.routeTable() {
		out = append(out, rt.pattern)
	}
	return out
}

// PageInfos lists every page route (WithPages) with the permission it
// needs.
func (s *Server) PageInfos() []RouteInfo {
	var out []RouteInfo
	if s.pages != nil {
		for _, p := range s.pages.Pages() {
			out = append(out, RouteInfo{Pattern: p.Pattern, Perm: p.Perm})
		}
	}
	return out
}

// routeTable lists every route of the API; openapi.json must document each (a test
// checks it).
func (s *Server) routeTable() []route {
	return []route{
		{pattern: "GET /api/v1/healthz", perm: auth.PermPublic, handler: s.health},
		{pattern: "GET /api/v1/openapi.json", perm: auth.PermRead, handler: s.openAPI},
		{pattern: "GET /api/v1/jobs", perm: auth.PermRead, handler: s.jobs},
		{pattern: "GET /api/v1/runs", perm: auth.PermRead, handler: s.runs},
		{pattern: "GET /api/v1/runs/{id}", perm: auth.PermReadRun, handler: s.run},
		{pattern: "GET /api/v1/runs/{id}/logs", perm: auth.PermRead, handler: s.logs},
		{pattern: "GET /api/v1/periods", perm: auth.PermRead, handler: s.periods},
		{pattern: "GET /api/v1/resources", perm: auth.PermRead, handler: s.resources},
		{pattern: "GET /api/v1/events", perm: auth.PermRead, handler: s.events},
		{pattern: "POST /api/v1/jobs/{name}/trigger", perm: auth.PermOperate, handler: s.audited("trigger", s.trigger)},
		{pattern: "POST /api/v1/jobs/{name}/pause", perm: auth.PermOperate, handler: s.audited("pause", s.pause)},
		{pattern: "POST /api/v1/jobs/{name}/resume", perm: auth.PermOperate, handler: s.audited("resume", s.resume)},
		{pattern: "GET /api/v1/jobs/{name}/periods", perm: auth.PermRead, handler: s.jobPeriods},
		{pattern: "POST /api/v1/runs/{id}/cancel", perm: auth.PermOperate, handler: s.audited("cancel", s.cancel)},
		{pattern: "POST /api/v1/runs/{id}/retry", perm: auth.PermOperate, handler: s.audited("retry", s.retry)},
		{pattern: "POST /api/v1/runs/{id}/mark", perm: auth.PermOperate, handler: s.audited("mark", s.mark)},
		{pattern: "POST /api/v1/runs/cancel", perm: auth.PermOperate, handler: s.audited("cancel-runs", s.bulkCancel)},
		{pattern: "POST /api/v1/runs/retry", perm: auth.PermOperate, handler: s.audited("retry-runs", s.bulkRetry)},
		{pattern: "POST /api/v1/runs/{id}/progress", perm: auth.PermReport, handler: s.progress},
		{pattern: "POST /api/v1/runs/{id}/artifacts", perm: auth.PermReport, handler: s.artifact},
		{pattern: "GET /api/v1/artifacts", perm: auth.PermRead, handler: s.artifacts},
		{pattern: "POST /api/v1/reload", perm: auth.PermAdmin, handler: s.audited("reload", s.reload)},
		{pattern: "GET /api/v1/audit", perm: auth.PermAdmin, handler: s.audit},
		{pattern: "GET /api/v1/agents", perm: auth.PermRead, handler: s.agentList},
		{pattern: "POST /api/v1/agents/{name}/register", perm: auth.PermAgent, handler: s.agentRegister},
		{pattern: "POST /api/v1/agents/{name}/heartbeat", perm: auth.PermAgent, handler: s.agentHeartbeat},
		{pattern: "POST /api/v1/agents/{name}/poll", perm: auth.PermAgent, handler: s.agentPoll},
		{pattern: "POST /api/v1/agents/{name}/runs/{id}/report", perm: auth.PermAgent, handler: s.agentReport},
	}
}

// ServeHTTP serves the API. Requests no route matches get a JSON error
// like every other, rather than the ServeMux's plain text.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		// Through the mux, not h: only the mux sets the path values.
		s.mux.ServeHTTP(w, r)
		return
	}
	// The mux answers 404, 405 (with an Allow header) or a redirect to a
	// cleaned path; let it decide, then speak JSON for the errors (or
	// the pages' language, outside the API's prefix).
	errw := func(status int, code, msg string) { writeError(w, status, code, msg) }
	if s.pages != nil && !strings.HasPrefix(r.URL.Path, Prefix) {
		errw = func(status int, code, msg string) { s.pages.WriteError(w, r, status, code, msg) }
	}
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusNotFound:
		errw(http.StatusNotFound, talon.ENOTFOUND, fmt.Sprintf("no such route: %s %s", r.Method, r.URL.Path))
	case http.StatusMethodNotAllowed:
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		errw(http.StatusMethodNotAllowed, EMETHODNOTALLOWED, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
	default:
		h.ServeHTTP(w, r)
	}
}

// statusRecorder learns what status the mux's fallback handler chose.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *statusRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}

// wrap is the one wrapper every route goes through: it gives the request
// an id, refuses a browser's cross-site state change and checks a page's
// CSRF token (see SessionCookie), asks the Authorizer, runs the handler
// and maps its error.
func (s *Server) wrap(rt route) http.Handler {
	h := rt.handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := fmt.Sprintf("%s-%d", s.idPrefix, s.idNext.Add(1))
		w.Header().Set("X-Request-Id", id)
		writeErr := writeError
		if rt.page {
			writeErr = func(w http.ResponseWriter, status int, code, msg string) { s.pages.WriteError(w, r, status, code, msg) }
		}
		err := s.checkBrowser(&r, rt)
		if err == nil {
			var p auth.Principal
			p, err = s.authorize(r, rt.perm)
			if err == nil {
				r = r.WithContext(auth.NewContext(r.Context(), p))
				err = h(w, r)
			}
		}
		if err == nil {
			return
		}
		var te *talon.Error
		if errors.As(err, &te) {
			if status := statusOf(te.Code); status != http.StatusInternalServerError {
				if status == http.StatusUnauthorized && !rt.page {
					w.Header().Set("WWW-Authenticate", `Bearer realm="talon"`)
				}
				writeErr(w, status, te.Code, te.Message)
				return
			}
		}
		if r.Context().Err() != nil {
			// The client went away; there is no one to answer.
			s.logger.Debug("request abandoned", "request", id, "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		s.logger.Error("request failed", "request", id, "method", r.Method, "path", r.URL.Path, "err", err)
		writeErr(w, http.StatusInternalServerError, talon.EINTERNAL, "internal error (request "+id+")")
	})
}

// checkBrowser guards state changes made by browsers: one from another
// site or origin is refused on every route; a page's, and one whose only
// credential is the session cookie, needs the CSRF token, and once it has
// shown it the session cookie may authenticate it (*r carries that).
func (s *Server) checkBrowser(r **http.Request, rt route) error {
	req := *r
	if safeMethod(req.Method) {
		return nil
	}
	if err := checkOrigin(req); err != nil {
		return err
	}
	if s.sessions == nil {
		return nil
	}
	_, cookie := sessionToken(req)
	if !rt.page && (!cookie || req.Header.Get("Authorization") != "") {
		return nil
	}
	if err := s.sessions.check(req); err != nil {
		return err
	}
	*r = req.WithContext(context.WithValue(req.Context(), csrfKey{}, true))
	return nil
}

// statusOf maps an error code to its HTTP status: the one place that does.
func statusOf(code string) int {
	switch code {
	case talon.EINVALID:
		return http.StatusBadRequest
	case talon.ENOTFOUND:
		return http.StatusNotFound
	case talon.ECONFLICT:
		return http.StatusConflict
	case talon.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case EUNAUTHORIZED:
		return http.StatusUnauthorized
	case EFORBIDDEN:
		return http.StatusForbidden
	case EMETHODNOTALLOWED:
		return http.StatusMethodNotAllowed
	case EREQUESTTIMEOUT:
		return http.StatusRequestTimeout
	}
	return http.StatusInternalServerError
}

// codeOf maps a status back to a code, for answers that did not come
// from a Talon server (a proxy's 502, say).
func codeOf(status int) string {
	switch status {
	case http.StatusMethodNotAllowed:
		return EMETHODNOTALLOWED
	case http.StatusRequestTimeout:
		return EREQUESTTIMEOUT
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return talon.EINVALID
	case http.StatusNotFound:
		return talon.ENOTFOUND
	case http.StatusConflict:
		return talon.ECONFLICT
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return talon.EUNAVAILABLE
	case http.StatusUnauthorized:
		return EUNAUTHORIZED
	case http.StatusForbidden:
		return EFORBIDDEN
	}
	return talon.EINTERNAL
}

// errorBody is the shape of every error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code = code
	b.Error.Message = msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own types are written; a failure here is a bug in them.
		body = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
		status = http.StatusInternalServerError
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	// With its length known, a client has the whole answer once it is
	// flushed, before the handler returns (see audited).
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// maxBody bounds request bodies: the largest legitimate one is a progress
// report with many items.
const maxBody = 1 << 20

// decode reads one JSON value from the body into v, strictly: unknown
// fields, trailing data and wrong types are invalid, with a message that
// says which. An empty body leaves v as it is when emptyOK.
func decode(r *http.Request, v any, emptyOK bool) error {
	return decodeN(r, v, emptyOK, maxBody)
}

// decodeLimit is decode of a non-empty body of at most limit bytes.
func decodeLimit(r *http.Request, v any, limit int) error {
	return decodeN(r, v, false, limit)
}

func decodeN(r *http.Request, v any, emptyOK bool, limit int) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return talon.Errorf(EREQUESTTIMEOUT, "request body: not received in time (a whole request must arrive within the server's read timeout)")
		}
		return fmt.Errorf("read request body: %w", err)
	}
	if len(body) > limit {
		return talon.Errorf(talon.EINVALID, "request body: larger than %d bytes", limit)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if emptyOK {
			return nil
		}
		return talon.Errorf(talon.EINVALID, "request body: empty, want a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return talon.Errorf(talon.EINVALID, "request body: %s", describeJSONError(err))
	}
	if dec.More() {
		return talon.Errorf(talon.EINVALID, "request body: unexpected data after the JSON object")
	}
	return nil
}

// describeJSONError turns encoding/json's errors into words a user of
// curl can act on.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("want %s, got JSON %s", typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	// Unknown fields come as plain errors: `json: unknown field "x"`.
	return strings.TrimPrefix(err.Error(), "json: ")
}

// runID reads the {id} of a run route.
func runID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, talon.Errorf(talon.EINVALID, "run id %q: want a positive integer", s)
	}
	return id, nil
}
