package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/talonhq/talon"
)

// Browsers (the dashboard, internal/web) use the server with two
// cookies and a token:
//
//   - SessionCookie holds a bearer token, set by the dashboard's login
//     form. The Authorizer reads it when a request has no Authorization
//     header, and checks it with the same auth chain as a header's token.
//     It is HttpOnly and SameSite=Strict (and Secure under TLS).
//   - CSRFCookie is a random value the server gives a browser that has
//     none; it binds the CSRF token when there is no session (a loopback
//     server without auth:, the login form itself).
//   - The CSRF token is the HMAC, under a key of the server's state store,
//     of the session cookie's value (else of the CSRF cookie's). Pages
//     carry it in their forms (CSRFField) and for scripts in a meta tag,
//     sent back as the CSRFHeader header. Another site can neither read
//     it nor compute it, and it changes with the identity it was made for.
//
// A state change (any method but GET, HEAD and OPTIONS) is refused with
// 403 when the browser says it comes from another site (Sec-Fetch-Site)
// or another origin (Origin), on every route. On a page route it also
// needs the CSRF token, and a session cookie authenticates a state change
// only when the token came with it: the API's own routes take a state
// change from a cookie-less client (the CLI, a script) with its bearer
// token, as before.
const (
	SessionCookie = "talon_session"
	CSRFCookie    = "talon_csrf"
	CSRFHeader    = "X-CSRF-Token"
	CSRFField     = "csrf"
)

// Sessions makes and checks the CSRF tokens of browsers' requests; see
// SessionCookie. Create it with NewSessions.
type Sessions struct {
	key    []byte
	secure bool
}

// NewSessions returns the sessions of a server whose CSRF tokens are
// signed with key (at least 16 bytes; serve keeps it in the state store,
// so every scheduler sharing the store accepts the others' tokens).
// secure marks cookies Secure: the server speaks HTTPS.
func NewSessions(key []byte, secure bool) *Sessions {
	if len(key) < 16 {
		panic("api: NewSessions with a key shorter than 16 bytes")
	}
	return &Sessions{key: key, secure: secure}
}

// WithSessions lets browsers use the server: the session cookie, the CSRF
// checks of page routes (WithPages needs it).
func WithSessions(s *Sessions) Option {
	return func(srv *Server) { srv.sessions = s }
}

// Secure reports whether the server's cookies are Secure.
func (s *Sessions) Secure() bool { return s.secure }

// Cookie returns a cookie of the server's kind: HttpOnly, SameSite=Strict,
// path /, Secure under TLS; maxAge < 0 deletes it.
func (s *Sessions) Cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode}
}

// binding is what a request's CSRF token is bound to: its session cookie,
// else its CSRF cookie; "" when it has neither.
func binding(r *http.Request) string {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return "session\x00" + c.Value
	}
	if c, err := r.Cookie(CSRFCookie); err == nil && c.Value != "" {
		return "browser\x00" + c.Value
	}
	return ""
}

func (s *Sessions) sign(bound string) string {
	m := hmac.New(sha256.New, s.key)
	// A fixed label first: the key signs nothing else.
	m.Write([]byte("talon csrf v1\x00"))
	m.Write([]byte(bound))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Token returns the CSRF token a page served for r must carry. When the
// browser has neither a session nor a CSRF cookie, it sets a CSRF cookie
// on w first (so call it before the answer's header is written).
func (s *Sessions) Token(w http.ResponseWriter, r *http.Request) string {
	b := binding(r)
	if b == "" {
		var v [24]byte
		_, _ = rand.Read(v[:]) // never fails (crypto/rand documents it)
		val := base64.RawURLEncoding.EncodeToString(v[:])
		http.SetCookie(w, s.Cookie(CSRFCookie, val, 0))
		// Later reads of the same request see it, so the token matches
		// the cookie the browser will send back.
		r.AddCookie(&http.Cookie{Name: CSRFCookie, Value: val})
		b = "browser\x00" + val
	}
	return s.sign(b)
}

// TokenFor returns the CSRF token of a browser whose session cookie will
// be session (a login sets it and shows the next page at once).
func (s *Sessions) TokenFor(session string) string {
	return s.sign("session\x00" + session)
}

// check verifies r's CSRF token (the CSRFHeader header, else the CSRFField
// form field of a urlencoded or multipart body).
func (s *Sessions) check(r *http.Request) error {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		// Bounded: a form's body is small, and ReadTimeout bounds its time.
		r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
		got = r.PostFormValue(CSRFField)
	}
	b := binding(r)
	if got == "" || b == "" {
		return talon.Errorf(EFORBIDDEN, "no CSRF token: state changes from a browser must come from the dashboard's own pages (reload the page and try again)")
	}
	if !hmac.Equal([]byte(got), []byte(s.sign(b))) {
		return talon.Errorf(EFORBIDDEN, "CSRF token does not match this browser's session (it changes when you log in or out): reload the page and try again")
	}
	return nil
}

// safeMethod reports whether a method changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkOrigin refuses a state change a browser says comes from another
// site or origin. Clients that are not browsers send neither header.
func checkOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return talon.Errorf(EFORBIDDEN, "cross-site request refused: %s %s comes from another site (Sec-Fetch-Site: %s)", r.Method, r.URL.Path, r.Header.Get("Sec-Fetch-Site"))
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return talon.Errorf(EFORBIDDEN, "cross-origin request refused: %s %s comes from origin %q, not this server (%s)", r.Method, r.URL.Path, o, r.Host)
	}
	return nil
}

type csrfKey struct{}

// csrfChecked reports whether the request passed the CSRF check, so that
// its session cookie may authenticate a state change.
func csrfChecked(ctx context.Context) bool {
	ok, _ := ctx.Value(csrfKey{}).(bool)
	return ok
}

// sessionToken reads the session cookie's token.
func sessionToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}
