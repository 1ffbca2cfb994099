package scheduler

import "github.com/talonhq/talon/internal/auth"

// AuthSource says who a bearer token names (Config.Auth). Authenticate
// returns the Principal, ErrUnknownToken when the source does not know
// the token (the next source is asked), or an error wrapping ErrRejected
// saying why it refuses one it knows (an expired token).
type AuthSource = auth.Source

// AuthReloader is an AuthSource that re-reads its data (a token file, a
// key set) when the scheduler reloads (Scheduler.Reload, POST
// /api/v1/reload). On error it keeps what it had.
type AuthReloader = auth.Reloader

// Principal is who a token names: a Name (recorded as who cancelled,
// retried, triggered) and a Role.
type Principal = auth.Principal

// Role is what a principal may do (docs/api.md lists each route's).
type Role = auth.Role

// The roles an AuthSource may grant. Viewer reads everything but
// secrets; operator also triggers, cancels, retries, backfills, marks,
// pauses and resumes; admin also reloads and reads the audit; agent is a
// remote node running talon agent.
const (
	RoleViewer   = auth.RoleViewer
	RoleOperator = auth.RoleOperator
	RoleAdmin    = auth.RoleAdmin
	RoleAgent    = auth.RoleAgent
)

// Errors an AuthSource answers with.
var (
	ErrUnknownToken = auth.ErrUnknownToken
	ErrRejected     = auth.ErrRejected
)

// TokenEntry is one token of NewTokens: who it names, with which role,
// and the SHA-256 of the token in hex (printf %s "$TOKEN" | sha256sum),
// so the program holds no secret.
type TokenEntry = auth.TokenEntry

// NewTokens returns a source of fixed tokens, as talon.yaml's
// auth: tokens: lists them: names and hashes must be unique, roles one
// of the four. Tokens are compared in constant time.
func NewTokens(entries []TokenEntry) (AuthSource, error) {
	t, err := auth.NewTokens(entries)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// OpenTokenFile returns a source that reads the token file at path (a
// line "NAME ROLE SHA256HEX" per token), as talon.yaml's auth:
// token_file: does, and reads it again at every reload, so tokens can be
// added and revoked without a restart (it is an AuthReloader).
func OpenTokenFile(path string) (AuthSource, error) {
	tf, err := auth.OpenTokenFile(path)
	if err != nil {
		return nil, err
	}
	return tf, nil
}
