package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// idp is an identity provider for tests: a signing key and its JWKS.
type idp struct {
	key *ecdsa.PrivateKey
	kid string
}

func newIDP(t *testing.T, kid string) *idp {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &idp{key: k, kid: kid}
}

func (p *idp) jwks(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are what a test token says; the zero value of a field is left out.
type claims struct {
	iss, sub string
	aud      []string
	exp, nbf time.Time
	groups   any
}

func (p *idp) sign(t *testing.T, c claims) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", p.kid)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	std := jwt.Claims{Issuer: c.iss, Subject: c.sub, Audience: c.aud}
	if !c.exp.IsZero() {
		std.Expiry = jwt.NewNumericDate(c.exp)
	}
	if !c.nbf.IsZero() {
		std.NotBefore = jwt.NewNumericDate(c.nbf)
	}
	custom := map[string]any{}
	if c.groups != nil {
		custom["groups"] = c.groups
	}
	tok, err := jwt.Signed(sig).Claims(std).Claims(custom).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var jwtNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func testJWTConfig() JWTConfig {
	return JWTConfig{
		Issuer:     "https://idp.example.com/",
		Audience:   "talon",
		Algorithms: []string{"ES256"},
		RoleClaim:  "groups",
		Roles:      map[string]Role{"talon-admins": RoleAdmin, "talon-ops": RoleOperator, "staff": RoleViewer},
	}
}

func good() claims {
	return claims{iss: "https://idp.example.com/", sub: "alice", aud: []string{"talon"}, exp: jwtNow.Add(time.Hour), groups: []any{"staff", "talon-ops"}}
}

func TestJWT(t *testing.T) {
	t.Parallel()
	p := newIDP(t, "k1")
	other := newIDP(t, "k1") // same key id, another key
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), p.jwks(t), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testJWTConfig()
	cfg.JWKSFile = "jwks.json"
	src, err := NewJWT(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	src.now = func() time.Time { return jwtNow }

	with := func(f func(c *claims)) claims { c := good(); f(&c); return c }
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(map[string]any{"iss": "https://idp.example.com/", "sub": "mallory", "aud": "talon", "exp": jwtNow.Add(time.Hour).Unix(), "groups": "talon-admins"})
	tests := []struct {
		name     string
		token    string
		wantName string
		wantRole Role
		wantErr  string // "" accepted; else the rejection, or "unknown"
	}{
		{name: "accepted, most capable role of the claim", token: p.sign(t, good()), wantName: "alice", wantRole: RoleOperator},
		{name: "a single string claim", token: p.sign(t, with(func(c *claims) { c.groups = "talon-admins" })), wantName: "alice", wantRole: RoleAdmin},
		{name: "within the leeway after exp", token: p.sign(t, with(func(c *claims) { c.exp = jwtNow.Add(-10 * time.Second) })), wantName: "alice", wantRole: RoleOperator},
		{name: "expired", token: p.sign(t, with(func(c *claims) { c.exp = jwtNow.Add(-time.Minute) })), wantErr: "token rejected: JWT expired at 2026-11-30T11:59:00Z"},
		{name: "not yet valid", token: p.sign(t, with(func(c *claims) { c.nbf = jwtNow.Add(time.Minute) })), wantErr: "token rejected: JWT not valid before 2026-11-30T12:01:00Z"},
		{name: "no exp", token: p.sign(t, with(func(c *claims) { c.exp = time.Time{} })), wantErr: "token rejected: JWT has no exp claim"},
		{name: "wrong audience", token: p.sign(t, with(func(c *claims) { c.aud = []string{"grafana"} })), wantErr: `token rejected: JWT audience does not include "talon"`},
		{name: "wrong issuer", token: p.sign(t, with(func(c *claims) { c.iss = "https://evil.example.com/" })), wantErr: `token rejected: JWT issuer "https://evil.example.com/" is not "https://idp.example.com/"`},
		{name: "signed by another key", token: other.sign(t, good()), wantErr: "token rejected: JWT signature does not verify with the provider's keys"},
		{name: "no role", token: p.sign(t, with(func(c *claims) { c.groups = []any{"sales"} })), wantErr: "token rejected: JWT claim groups grants no role (want one of staff, talon-admins, talon-ops)"},
		{name: "no subject", token: p.sign(t, with(func(c *claims) { c.sub = "" })), wantErr: "token rejected: JWT has no sub claim naming who it is"},
		{name: "alg none", token: b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(payload) + ".", wantErr: `token rejected: JWT algorithm "none" not accepted (want ES256)`},
		{name: "alg HS256", token: b64([]byte(`{"alg":"HS256","typ":"JWT","kid":"k1"}`)) + "." + b64(payload) + "." + b64([]byte("sig")), wantErr: `token rejected: JWT algorithm "HS256" not accepted (want ES256)`},
		{name: "unknown key id", token: (&idp{key: p.key, kid: "k9"}).sign(t, good()), wantErr: `token rejected: JWT signed with key id "k9", which the JWKS does not hold`},
		{name: "not a JWT", token: "plain-token", wantErr: "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := src.Authenticate(t.Context(), tt.token)
			switch {
			case tt.wantErr == "unknown":
				if !errors.Is(err, ErrUnknownToken) {
					t.Errorf("err = %v, want ErrUnknownToken", err)
				}
			case tt.wantErr != "":
				if !errors.Is(err, ErrRejected) || err.Error() != tt.wantErr {
					t.Errorf("err = %v, want rejected: %s", err, tt.wantErr)
				}
				if err != nil && strings.Contains(err.Error(), tt.token) {
					t.Errorf("the error quotes the token")
				}
			case err != nil:
				t.Errorf("err = %v, want accepted", err)
			case got.Name != tt.wantName || got.Role != tt.wantRole || got.Source != "jwt":
				t.Errorf("principal = %+v, want %s as %s from jwt", got, tt.wantName, tt.wantRole)
			}
		})
	}
}

// TestJWKSURL fetches keys on the first token, again when a token names
// an unknown key id (the provider rotated its keys) but at most once per
// jwks_refresh, and on reload.
func TestJWKSURL(t *testing.T) {
	t.Parallel()
	k1, k2 := newIDP(t, "k1"), newIDP(t, "k2")
	var serving atomic.Pointer[[]byte]
	var fetches atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(*serving.Load())
	}))
	t.Cleanup(hs.Close)
	set := k1.jwks(t)
	serving.Store(&set)

	cfg := testJWTConfig()
	cfg.JWKSURL = hs.URL + "/jwks.json"
	cfg.JWKSRefresh = time.Minute
	src, err := NewJWT(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	now := jwtNow
	src.now = func() time.Time { return now }
	if n := fetches.Load(); n != 0 {
		t.Fatalf("%d fetches before any token, want 0", n)
	}
	if _, err := src.Authenticate(t.Context(), k1.sign(t, good())); err != nil {
		t.Fatalf("k1: %v", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after the first token, want 1", n)
	}

	// The provider rotates to k2. A token of k2 soon after the last
	// fetch is refused without a fetch; a minute later, it is fetched.
	set2 := k2.jwks(t)
	serving.Store(&set2)
	now = now.Add(10 * time.Second)
	if _, err := src.Authenticate(t.Context(), k2.sign(t, good())); !errors.Is(err, ErrRejected) || fetches.Load() != 1 {
		t.Fatalf("k2 within jwks_refresh: err %v after %d fetches, want rejected after 1", err, fetches.Load())
	}
	now = now.Add(time.Minute)
	if p, err := src.Authenticate(t.Context(), k2.sign(t, good())); err != nil || p.Name != "alice" || fetches.Load() != 2 {
		t.Fatalf("k2 after jwks_refresh: %+v %v after %d fetches, want alice after 2", p, err, fetches.Load())
	}

	// Reload fetches at once; a provider that fails keeps the keys known.
	hsFail := "not json"
	b := []byte(hsFail)
	serving.Store(&b)
	if err := src.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "not a JSON Web Key Set") {
		t.Fatalf("reload of a bad JWKS: %v", err)
	}
	if _, err := src.Authenticate(t.Context(), k2.sign(t, good())); err != nil {
		t.Fatalf("k2 after a failed reload: %v", err)
	}
}

// TestJWKSRefusesSecrets: a JWKS holding a symmetric or private key is
// refused, as are algorithms that are not asymmetric.
func TestJWKSRefusesSecrets(t *testing.T) {
	t.Parallel()
	p := newIDP(t, "k1")
	sym, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h", Algorithm: "HS256"}}})
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: p.key, KeyID: "p", Algorithm: "ES256"}}})
	for name, data := range map[string][]byte{"symmetric": sym, "private": priv} {
		if _, err := parseJWKS(data); err == nil || !strings.Contains(err.Error(), "is not a public key") {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
}
