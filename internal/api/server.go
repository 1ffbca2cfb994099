package api

import (
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
}

// closeStreams ends the streams being served, and refuses new ones.
func (s *Server) closeStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

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
}

// handlerFunc is a handler that returns its error, so that one wrapper
// maps errors to statuses.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Prefix is the path every route of the API lives under.
const Prefix = "/api/v1/"

func (s *Server) routes() {
	for _, rt := range s.routeTable() {
		if rt.perm == "" {
			// A route without a row in the permission table would be
			// decided by no one: refuse to start (a bug in the table).
			panic("api: route " + rt.pattern + " names no permission")
		}
		s.mux.Handle(rt.pattern, s.wrap(rt.perm, rt.handler))
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

// routeTable lists every route; openapi.json must document each (a test
// checks it).
func (s *Server) routeTable() []route {
	return []route{
		{"GET /api/v1/healthz", auth.PermPublic, s.health},
		{"GET /api/v1/openapi.json", auth.PermRead, s.openAPI},
		{"GET /api/v1/jobs", auth.PermRead, s.jobs},
		{"GET /api/v1/runs", auth.PermRead, s.runs},
		{"GET /api/v1/runs/{id}", auth.PermReadRun, s.run},
		{"GET /api/v1/runs/{id}/logs", auth.PermRead, s.logs},
		{"GET /api/v1/periods", auth.PermRead, s.periods},
		{"GET /api/v1/resources", auth.PermRead, s.resources},
		{"GET /api/v1/events", auth.PermRead, s.events},
		{"POST /api/v1/jobs/{name}/trigger", auth.PermOperate, s.audited("trigger", s.trigger)},
		{"POST /api/v1/jobs/{name}/pause", auth.PermOperate, s.audited("pause", s.pause)},
		{"POST /api/v1/jobs/{name}/resume", auth.PermOperate, s.audited("resume", s.resume)},
		{"GET /api/v1/jobs/{name}/periods", auth.PermRead, s.jobPeriods},
		{"POST /api/v1/runs/{id}/cancel", auth.PermOperate, s.audited("cancel", s.cancel)},
		{"POST /api/v1/runs/{id}/retry", auth.PermOperate, s.audited("retry", s.retry)},
		{"POST /api/v1/runs/{id}/mark", auth.PermOperate, s.audited("mark", s.mark)},
		{"POST /api/v1/runs/cancel", auth.PermOperate, s.audited("cancel-runs", s.bulkCancel)},
		{"POST /api/v1/runs/retry", auth.PermOperate, s.audited("retry-runs", s.bulkRetry)},
		{"POST /api/v1/runs/{id}/progress", auth.PermReport, s.progress},
		{"POST /api/v1/runs/{id}/artifacts", auth.PermReport, s.artifact},
		{"GET /api/v1/artifacts", auth.PermRead, s.artifacts},
		{"POST /api/v1/reload", auth.PermAdmin, s.audited("reload", s.reload)},
		{"GET /api/v1/audit", auth.PermAdmin, s.audit},
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
	// cleaned path; let it decide, then speak JSON for the errors.
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusNotFound:
		writeError(w, http.StatusNotFound, talon.ENOTFOUND, fmt.Sprintf("no such route: %s %s", r.Method, r.URL.Path))
	case http.StatusMethodNotAllowed:
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, EMETHODNOTALLOWED, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
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
// an id, asks the Authorizer, runs the handler and maps its error.
func (s *Server) wrap(perm auth.Permission, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := fmt.Sprintf("%s-%d", s.idPrefix, s.idNext.Add(1))
		w.Header().Set("X-Request-Id", id)
		p, err := s.authorize(r, perm)
		if err == nil {
			r = r.WithContext(auth.NewContext(r.Context(), p))
			err = h(w, r)
		}
		if err == nil {
			return
		}
		var te *talon.Error
		if errors.As(err, &te) {
			if status := statusOf(te.Code); status != http.StatusInternalServerError {
				if status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="talon"`)
				}
				writeError(w, status, te.Code, te.Message)
				return
			}
		}
		if r.Context().Err() != nil {
			// The client went away; there is no one to answer.
			s.logger.Debug("request abandoned", "request", id, "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		s.logger.Error("request failed", "request", id, "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, talon.EINTERNAL, "internal error (request "+id+")")
	})
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
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return talon.Errorf(EREQUESTTIMEOUT, "request body: not received in time (a whole request must arrive within the server's read timeout)")
		}
		return fmt.Errorf("read request body: %w", err)
	}
	if len(body) > maxBody {
		return talon.Errorf(talon.EINVALID, "request body: larger than %d bytes", maxBody)
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
