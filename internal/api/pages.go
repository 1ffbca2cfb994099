package api

import (
	"net/http"

	"github.com/talonhq/talon/internal/auth"
)

// Page is a route of another surface that the API's server serves on its
// port: the dashboard (internal/web). It goes through the same wrapper
// as every API route — request id, the Authorizer and the permission
// table, the audit, one error path — plus a CSRF check on every state
// change, so no page does with less than its API twin needs.
type Page struct {
	Pattern string
	Perm    auth.Permission
	// Audit names the action the audit records for each request (as the
	// API's route for the same operation does); "" records nothing.
	Audit   string
	Handler func(w http.ResponseWriter, r *http.Request) error
}

// Pages is a set of page routes and how they answer errors.
type Pages interface {
	// Pages lists the routes.
	Pages() []Page
	// WriteError answers a page request that failed: refused by the
	// Authorizer (401, 403), a CSRF or origin check (403), or its handler
	// (any status). A request outside the API's prefix that no route
	// matches (404, 405) is answered here too. msg is safe to show.
	WriteError(w http.ResponseWriter, r *http.Request, status int, code, msg string)
}

// WithPages serves pages beside the API. It needs WithSessions.
func WithPages(p Pages) Option {
	return func(s *Server) { s.pages = p }
}
