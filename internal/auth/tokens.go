package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// The tokens source: bearer tokens listed in the config by the SHA-256 of
// the token, so the config holds no secret:
//
//	auth:
//	  tokens:
//	    - {name: alice, role: operator, token_sha256: 5e88…}
//
// `printf %s "$TOKEN" | sha256sum` gives the hash. The list is read at
// start; tokens that change without a restart belong in a token_file.
func init() { Register("tokens", newTokens) }

// TokenEntry is one token a tokens list or token file knows.
type TokenEntry struct {
	Name        string `yaml:"name"`
	Role        Role   `yaml:"role"`
	TokenSHA256 string `yaml:"token_sha256"`
}

// tokenSet is a checked list of entries, with their hashes decoded.
type tokenSet struct {
	source  string
	names   []string
	roles   []Role
	hashes  [][sha256.Size]byte
	entries int
}

// newTokenSet checks entries: each has a name, a role a config may grant
// and a 64-digit hex hash; names and hashes are unique. where(i) says
// where entry i is, for errors. Errors never quote a hash.
func newTokenSet(source string, entries []TokenEntry, where func(i int) string) (*tokenSet, error) {
	ts := &tokenSet{source: source, entries: len(entries)}
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{}
	for i, e := range entries {
		at := where(i)
		if e.Name == "" {
			return nil, fmt.Errorf("%s: name is empty", at)
		}
		if j, dup := names[e.Name]; dup {
			return nil, fmt.Errorf("%s: name %q repeated (first at %s)", at, e.Name, where(j))
		}
		if !e.Role.Valid() {
			return nil, fmt.Errorf("%s: role %q: want %s", at, e.Role, roleList())
		}
		var h [sha256.Size]byte
		b, err := hex.DecodeString(e.TokenSHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%s: token_sha256: want the 64 hex digits of the token's SHA-256 (printf %%s \"$TOKEN\" | sha256sum)", at)
		}
		copy(h[:], b)
		if j, dup := hashes[h]; dup {
			return nil, fmt.Errorf("%s: token_sha256 is the same as at %s: each token must name one principal", at, where(j))
		}
		names[e.Name], hashes[h] = i, i
		ts.names = append(ts.names, e.Name)
		ts.roles = append(ts.roles, e.Role)
		ts.hashes = append(ts.hashes, h)
	}
	return ts, nil
}

// lookup finds token by its hash. Every entry is compared, in constant
// time, so the time taken says nothing about which entry (if any)
// matched or how much of a hash did.
func (ts *tokenSet) lookup(token string) (Principal, error) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range ts.hashes {
		if subtle.ConstantTimeCompare(h[:], ts.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, ErrUnknownToken
	}
	return Principal{Name: ts.names[found], Role: ts.roles[found], Source: ts.source}, nil
}

func roleList() string {
	var s []string
	for _, r := range Roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}

// Tokens is the tokens source.
type Tokens struct{ set *tokenSet }

// NewTokens returns a tokens source of entries, checked as the config's
// are.
func NewTokens(entries []TokenEntry) (*Tokens, error) {
	set, err := newTokenSet("tokens", entries, func(i int) string { return fmt.Sprintf("entry %d", i+1) })
	if err != nil {
		return nil, err
	}
	return &Tokens{set: set}, nil
}

func newTokens(decode func(any) error, _ string) (Source, error) {
	var entries []TokenEntry
	if err := decode(&entries); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no tokens: want a list of {name, role, token_sha256}")
	}
	return NewTokens(entries)
}

// Authenticate names the principal of token, or returns ErrUnknownToken.
func (t *Tokens) Authenticate(_ context.Context, token string) (Principal, error) {
	return t.set.lookup(token)
}
