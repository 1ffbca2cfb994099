// Package runtoken is the token each run gets as TALON_TOKEN: it lets the
// run read itself and report its progress and artifacts through the API
// (auth.RoleRun), and nothing else, and it dies when the run ends.
//
// A token is "talon-run.ID.MAC", where MAC is the HMAC-SHA256 of the run
// id under a random key kept in the state store (store.Secret). Nothing
// per run is stored: any scheduler sharing the database verifies any
// run's token, and a scheduler that restarts and re-attaches a running
// run keeps accepting the token the run already holds. A token is
// accepted only while its run has not ended, which the source checks in
// the store at every request; run ids are never reused, so a token never
// comes back to life for another run.
package runtoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/store"
)

// Prefix starts every run token, so other sources and people can tell
// one at a glance (and secret scanners can look for it).
const Prefix = "talon-run."

// SourceName is the Source of the principals this package returns.
const SourceName = "run"

// secretName is the name of the signing key in the store.
const secretName = "run-token"

// runStore is what a Source needs of the state store.
type runStore interface {
	Secret(ctx context.Context, name string) ([]byte, error)
	ListRuns(ctx context.Context, f store.RunFilter) ([]talon.Run, error)
}

// Source mints and verifies run tokens. It is an auth.Source.
type Source struct {
	key []byte
	st  runStore
}

var _ auth.Source = (*Source)(nil)

// New returns a Source with the store's run-token key, which it makes the
// first time any scheduler asks.
func New(ctx context.Context, st runStore) (*Source, error) {
	key, err := st.Secret(ctx, secretName)
	if err != nil {
		return nil, fmt.Errorf("run tokens: %w", err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("run tokens: the store's key has %d bytes, want at least 16", len(key))
	}
	return &Source{key: key, st: st}, nil
}

// Mint returns the token of run id, for its TALON_TOKEN.
func (s *Source) Mint(id int64) string {
	return Prefix + strconv.FormatInt(id, 10) + "." + base64.RawURLEncoding.EncodeToString(s.mac(id))
}

func (s *Source) mac(id int64) []byte {
	m := hmac.New(sha256.New, s.key)
	// A fixed label first: the key signs nothing else, and a later format
	// can change the label.
	m.Write([]byte("talon run token v1\x00"))
	m.Write([]byte(strconv.FormatInt(id, 10)))
	return m.Sum(nil)
}

// Authenticate returns the principal of a run token: role run, the run's
// id, and the name "run ID". It answers auth.ErrUnknownToken for anything
// that is not a token this store's key signed, and an error wrapping
// auth.ErrRejected for the token of a run that has ended or no longer
// exists. Store trouble is returned as is (wrapping store.ErrUnavailable
// when the store is down): the token may be good.
func (s *Source) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	id, ok := s.verify(token)
	if !ok {
		return auth.Principal{}, auth.ErrUnknownToken
	}
	runs, err := s.st.ListRuns(ctx, store.RunFilter{IDs: []int64{id}})
	if err != nil {
		return auth.Principal{}, fmt.Errorf("run token of run %d: %w", id, err)
	}
	if len(runs) == 0 {
		return auth.Principal{}, fmt.Errorf("%w: run token of run %d, which no longer exists", auth.ErrRejected, id)
	}
	if r := runs[0]; r.State.Terminal() {
		return auth.Principal{}, fmt.Errorf("%w: run token of run %d, which has ended (%s): a token dies with its run", auth.ErrRejected, id, r.State)
	}
	return auth.Principal{Name: "run " + strconv.FormatInt(id, 10), Role: auth.RoleRun, Run: id, Source: SourceName}, nil
}

// verify checks the token's form and signature, in constant time for
// the signature, and returns its run id.
func (s *Source) verify(token string) (int64, bool) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return 0, false
	}
	idText, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	// Only the canonical form: "007" or "+7" would be another spelling
	// of a signed id.
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != idText {
		return 0, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return 0, false
	}
	return id, hmac.Equal(got, s.mac(id))
}
