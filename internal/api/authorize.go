package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/auth"
)

// Authorizer decides whether a request may use a route that needs perm
// (auth.Permission, from the route table). It returns who the caller is
// (its Name is recorded as the "by" of a cancel or retry) — the zero
// Principal for a caller without a token on a public route — or an
// error: a *talon.Error with code unauthorized or forbidden becomes 401
// or 403.
type Authorizer func(r *http.Request, perm auth.Permission) (auth.Principal, error)

// UserHeader carries the caller's name when there is no authentication:
// the CLI sends the local user's name so a cancel says who did it.
const UserHeader = "X-Talon-User"

// anonymousSource is the Principal.Source of a caller served without a
// token.
const anonymousSource = "anonymous"

// AllowAll is the Authorizer of a server listening on loopback without
// authentication: everyone may do everything, as an admin, and says who
// they are in UserHeader.
func AllowAll(r *http.Request, _ auth.Permission) (auth.Principal, error) {
	return anonymous(r), nil
}

func anonymous(r *http.Request) auth.Principal {
	name := r.Header.Get(UserHeader)
	if name == "" {
		name = "api"
	}
	return auth.Principal{Name: name, Role: auth.RoleAdmin, Source: anonymousSource}
}

// BearerAuth returns the Authorizer that authenticates the bearer token
// of each request with authn (an auth.Chain) and checks the principal's
// role against the permission table (auth.Principal.Allows).
//
// A request that presents a token is always authenticated, and its role
// applies. One without a token is served as AllowAll serves it when
// anonymous is true — which the caller must allow only when the server
// listens on loopback and no auth source is configured —, else it may
// use public routes only. logger receives why a token could not be
// checked (a JWKS that cannot be fetched); the client is told only to
// try again.
func BearerAuth(authn auth.Source, anonymousOK bool, logger *slog.Logger) Authorizer {
	return func(r *http.Request, perm auth.Permission) (auth.Principal, error) {
		token, present, err := bearerToken(r)
		if err != nil {
			return auth.Principal{}, err
		}
		// A browser's session cookie carries a token too: it is read
		// for reads, and for state changes that showed the CSRF token
		// (see SessionCookie). Public routes ignore it, so a stale one
		// never keeps anyone from the login page; nor does a server
		// without auth:, which has no logins.
		fromCookie := false
		if !present && !anonymousOK && perm != auth.PermPublic && (safeMethod(r.Method) || csrfChecked(r.Context())) {
			token, fromCookie = sessionToken(r)
			present = fromCookie
		}
		var p auth.Principal
		switch {
		case present:
			p, err = authn.Authenticate(r.Context(), token)
			switch {
			case err == nil:
			case errors.Is(err, auth.ErrUnknownToken) && fromCookie:
				return auth.Principal{}, talon.Errorf(EUNAUTHORIZED, "the session's token is not known (any more): log in again")
			case errors.Is(err, auth.ErrUnknownToken):
				return auth.Principal{}, talon.Errorf(EUNAUTHORIZED, "token not known")
			case errors.Is(err, auth.ErrRejected):
				// Sources word their reasons without the token.
				return auth.Principal{}, talon.Errorf(EUNAUTHORIZED, "%v", err)
			default:
				logger.Error("token not checked", "method", r.Method, "path", r.URL.Path, "err", err)
				return auth.Principal{}, talon.Errorf(talon.EUNAVAILABLE, "the token cannot be checked now (the server's log says why); try again")
			}
		case anonymousOK:
			p = anonymous(r)
		case perm == auth.PermPublic:
			return auth.Principal{}, nil
		default:
			return auth.Principal{}, talon.Errorf(EUNAUTHORIZED, "no token: send Authorization: Bearer TOKEN")
		}
		if !p.Allows(perm, runOfPath(r)) {
			return auth.Principal{}, forbidden(p, perm)
		}
		return p, nil
	}
}

// bearerToken reads "Authorization: Bearer TOKEN". present is false when
// the header is absent; another scheme, or an empty token, is an error.
func bearerToken(r *http.Request) (token string, present bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, nil
	}
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", true, talon.Errorf(EUNAUTHORIZED, "Authorization header: want Bearer TOKEN")
	}
	return tok, true, nil
}

// runOfPath is the run a route is about: its {id}, 0 when it has none or
// it is not a run id (the handler will refuse it).
func runOfPath(r *http.Request) int64 {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// permWords says what a permission lets one do, for a 403.
var permWords = map[auth.Permission]string{
	auth.PermRead:    "read jobs, runs, periods, resources and logs",
	auth.PermReadRun: "read this run",
	auth.PermReport:  "report progress and artifacts of this run",
	auth.PermOperate: "trigger, cancel or retry runs",
	auth.PermAgent:   "act as an agent",
	auth.PermAdmin:   "reload or administer the server",
	auth.PermPublic:  "use public routes",
}

// forbidden words a 403: who, with which role, may not do what, and
// which roles may — read from the permission table itself.
func forbidden(p auth.Principal, perm auth.Permission) error {
	var may []string
	for _, r := range auth.Roles {
		if (auth.Principal{Role: r}).Allows(perm, 0) {
			may = append(may, string(r))
		}
	}
	what := permWords[perm]
	if what == "" {
		what = string(perm)
	}
	msg := fmt.Sprintf("%s (role %s) may not %s", p.Name, p.Role, what)
	if p.Role == auth.RoleRun {
		msg = fmt.Sprintf("%s: a run's token may only read and report for its own run (%d)", msg, p.Run)
	}
	if len(may) > 0 {
		msg += "; that needs role " + strings.Join(may, " or ")
	}
	return talon.Errorf(EFORBIDDEN, "%s", msg)
}

// Caller returns the name of who is making the request, "" for a caller
// without a token on a public route.
func Caller(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	return p.Name
}

// PrincipalOf returns who is making the request, and whether anyone is:
// a caller without a token on a public route is no one.
func PrincipalOf(ctx context.Context) (auth.Principal, bool) {
	return auth.FromContext(ctx)
}
