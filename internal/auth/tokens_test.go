package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hashOf(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func TestTokens(t *testing.T) {
	t.Parallel()
	src, err := NewTokens([]TokenEntry{
		{Name: "alice", Role: RoleOperator, TokenSHA256: hashOf("a-secret")},
		{Name: "bob", Role: RoleViewer, TokenSHA256: hashOf("b-secret")},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := src.Authenticate(t.Context(), "b-secret")
	if err != nil || p != (Principal{Name: "bob", Role: RoleViewer, Source: "tokens"}) {
		t.Errorf("b-secret: %+v %v", p, err)
	}
	if _, err := src.Authenticate(t.Context(), "a-secret "); !errors.Is(err, ErrUnknownToken) {
		t.Errorf("near miss: %v, want ErrUnknownToken", err)
	}

	for _, tt := range []struct {
		name    string
		entries []TokenEntry
		want    string
	}{
		{"no name", []TokenEntry{{Role: RoleAdmin, TokenSHA256: hashOf("x")}}, "entry 1: name is empty"},
		{"run role is the engine's", []TokenEntry{{Name: "a", Role: RoleRun, TokenSHA256: hashOf("x")}}, `entry 1: role "run": want viewer, operator, admin, agent`},
		{"same hash twice", []TokenEntry{{Name: "a", Role: RoleAdmin, TokenSHA256: hashOf("x")}, {Name: "b", Role: RoleViewer, TokenSHA256: hashOf("x")}}, "entry 2: token_sha256 is the same as at entry 1: each token must name one principal"},
		{"same name twice", []TokenEntry{{Name: "a", Role: RoleAdmin, TokenSHA256: hashOf("x")}, {Name: "a", Role: RoleViewer, TokenSHA256: hashOf("y")}}, `entry 2: name "a" repeated (first at entry 1)`},
	} {
		if _, err := NewTokens(tt.entries); err == nil || err.Error() != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
}

// TestTokenFileReload: the file is re-read on Reload, so a token can be
// revoked or added without a restart; a bad file keeps the old tokens
// and its error names the line without quoting it.
func TestTokenFileReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# name role sha256\n\nalice operator " + hashOf("a-secret") + "\n")
	tf, err := OpenTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	known := func(token string) (Principal, bool) {
		p, err := tf.Authenticate(t.Context(), token)
		return p, err == nil
	}
	if p, ok := known("a-secret"); !ok || p.Role != RoleOperator || p.Source != "token_file" {
		t.Fatalf("alice: %+v %v", p, ok)
	}

	write("bob\tadmin\t" + hashOf("b-secret") + "\n")
	if err := tf.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := known("a-secret"); ok {
		t.Error("alice's token still known after it left the file")
	}
	if p, ok := known("b-secret"); !ok || p.Name != "bob" || p.Role != RoleAdmin {
		t.Errorf("bob after reload: %+v %v", p, ok)
	}

	write("bob admin " + hashOf("b-secret") + "\nb-secret pasted by mistake\n")
	err = tf.Reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), path+":2: want NAME ROLE SHA256HEX, got 4 fields") || strings.Contains(err.Error(), "b-secret") {
		t.Errorf("bad file: %v", err)
	}
	if _, ok := known("b-secret"); !ok {
		t.Error("a bad file dropped the tokens read before")
	}
}

// fixed is a Source for chain tests.
type fixed struct {
	token string
	p     Principal
	err   error
}

func (f fixed) Authenticate(_ context.Context, token string) (Principal, error) {
	if token != f.token {
		return Principal{}, ErrUnknownToken
	}
	return f.p, f.err
}

func TestChain(t *testing.T) {
	t.Parallel()
	c := NewChain(
		fixed{token: "run", p: Principal{Name: "run 7", Role: RoleRun, Run: 7, Source: "run"}},
		fixed{token: "old", err: errors.Join(ErrRejected, errors.New("expired"))},
		fixed{token: "old", p: Principal{Name: "never asked", Role: RoleAdmin}},
		fixed{token: "bob", p: Principal{Name: "bob", Role: RoleViewer}},
		fixed{token: "odd", p: Principal{Name: "odd", Role: "root"}},
	)
	if p, err := c.Authenticate(t.Context(), "run"); err != nil || p.Run != 7 {
		t.Errorf("run: %+v %v", p, err)
	}
	if p, err := c.Authenticate(t.Context(), "bob"); err != nil || p.Name != "bob" {
		t.Errorf("bob: %+v %v", p, err)
	}
	if _, err := c.Authenticate(t.Context(), "old"); !errors.Is(err, ErrRejected) {
		t.Errorf("old: %v, want rejected by the first source that knows it", err)
	}
	for _, tok := range []string{"", "nobody"} {
		if _, err := c.Authenticate(t.Context(), tok); !errors.Is(err, ErrUnknownToken) {
			t.Errorf("%q: %v, want ErrUnknownToken", tok, err)
		}
	}
	if _, err := c.Authenticate(t.Context(), "odd"); !errors.Is(err, ErrRejected) {
		t.Errorf("a role no config may grant: %v, want rejected", err)
	}
}
