package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The jwt source: signed JSON Web Tokens from an identity provider (SSO),
// verified against the provider's public keys (a JWKS, from a file or a
// URL). The token's issuer and audience must be the configured ones, it
// must not be expired or not yet valid, and one of its role claim's
// values must map to a role:
//
//	auth:
//	  jwt:
//	    issuer: https://idp.example.com/
//	    audience: talon
//	    jwks_url: https://idp.example.com/.well-known/jwks.json
//	    algorithms: [RS256]
//	    role_claim: groups
//	    roles: {talon-admins: admin, talon-ops: operator, staff: viewer}
//
// Only asymmetric algorithms are accepted (never none, never an HMAC one:
// a JWKS holds public keys, and an HMAC "signed" with a public key proves
// nothing).
func init() { Register("jwt", newJWTSource) }

// JWTConfig is the jwt source's settings.
type JWTConfig struct {
	// Issuer is the iss claim a token must have. Required.
	Issuer string `yaml:"issuer"`
	// Audience is a value the aud claim must hold. Required.
	Audience string `yaml:"audience"`
	// JWKSFile is a JSON Web Key Set file (relative to the config file),
	// re-read on reload. One of JWKSFile and JWKSURL is required.
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is where the JWKS is fetched from: https, or http on a
	// loopback host. It is fetched on the first token, on reload, and
	// when a token names a key id the set lacks (at most once per
	// JWKSRefresh).
	JWKSURL string `yaml:"jwks_url"`
	// Algorithms are the signature algorithms accepted. Required: RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA.
	Algorithms []string `yaml:"algorithms"`
	// RoleClaim is the claim whose value (a string or a list of strings)
	// is looked up in Roles. Required.
	RoleClaim string `yaml:"role_claim"`
	// Roles maps values of RoleClaim to roles. When several match, the
	// one allowing most wins: admin, then operator, viewer, agent.
	Roles map[string]Role `yaml:"roles"`
	// NameClaim is the claim that names the principal. Default "sub".
	NameClaim string `yaml:"name_claim"`
	// Leeway is how far exp and nbf may be off, for clocks that differ.
	// Default 30s, at most 5m.
	Leeway time.Duration `yaml:"leeway"`
	// Timeout bounds a JWKS fetch. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// JWKSRefresh is the least time between two fetches caused by an
	// unknown key id, so tokens with made-up key ids cannot make Talon
	// hammer the provider. Default 1m.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
}

// Defaults and bounds of JWTConfig.
const (
	DefaultJWTLeeway   = 30 * time.Second
	MaxJWTLeeway       = 5 * time.Minute
	DefaultJWKSTimeout = 10 * time.Second
	DefaultJWKSRefresh = time.Minute
	maxJWKSBytes       = 1 << 20
	// jwksRetryAfterFailure is how soon a JWKS that was never fetched is
	// asked for again after a failure.
	jwksRetryAfterFailure = 5 * time.Second
)

var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// roleRank orders roles by what they allow, for a token whose claim maps
// to several.
var roleRank = []Role{RoleAdmin, RoleOperator, RoleViewer, RoleAgent}

// JWT is the jwt source.
type JWT struct {
	cfg    JWTConfig
	algs   []jose.SignatureAlgorithm
	client *http.Client
	now    func() time.Time

	keys atomic.Pointer[jose.JSONWebKeySet]
	// fetchMu serializes loading keys; lastFetch is when the URL was last
	// asked (successfully or not), under fetchMu.
	fetchMu   sync.Mutex
	lastFetch time.Time
	lastErr   error
}

var (
	_ Source   = (*JWT)(nil)
	_ Reloader = (*JWT)(nil)
)

func newJWTSource(decode func(any) error, dir string) (Source, error) {
	var cfg JWTConfig
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	return NewJWT(cfg, dir)
}

// NewJWT checks cfg and returns the source. A JWKSFile (relative to dir)
// is read now; a JWKSURL is fetched on the first token.
func NewJWT(cfg JWTConfig, dir string) (*JWT, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if cfg.Issuer == "" {
		add("issuer: required (the iss claim tokens must have)")
	}
	if cfg.Audience == "" {
		add("audience: required (a value the aud claim must hold)")
	}
	switch {
	case cfg.JWKSFile == "" && cfg.JWKSURL == "":
		add("want jwks_file or jwks_url: where the provider's public keys are")
	case cfg.JWKSFile != "" && cfg.JWKSURL != "":
		add("jwks_file and jwks_url: want one of them, not both")
	case cfg.JWKSURL != "":
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			add("jwks_url: %v", err)
		}
	}
	var algs []jose.SignatureAlgorithm
	if len(cfg.Algorithms) == 0 {
		add("algorithms: required, e.g. [RS256]: the signature algorithms the provider uses")
	}
	for _, a := range cfg.Algorithms {
		alg := jose.SignatureAlgorithm(a)
		if !slices.Contains(jwtAlgorithms, alg) {
			add("algorithms: %q not accepted: want %s (never none, nor HMAC: a JWKS holds public keys)", a, algList())
			continue
		}
		algs = append(algs, alg)
	}
	if cfg.RoleClaim == "" {
		add("role_claim: required (the claim whose values roles: maps, e.g. groups)")
	}
	if len(cfg.Roles) == 0 {
		add("roles: required (values of the role claim and the role each grants, e.g. {talon-admins: admin})")
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Roles)) {
		if r := cfg.Roles[k]; !r.Valid() {
			add("roles: %q: role %q: want %s", k, r, roleList())
		}
	}
	if cfg.NameClaim == "" {
		cfg.NameClaim = "sub"
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultJWTLeeway
	case cfg.Leeway < 0 || cfg.Leeway > MaxJWTLeeway:
		add("leeway: want between 0s and %s, not %s", MaxJWTLeeway, cfg.Leeway)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultJWKSTimeout
	}
	if cfg.JWKSRefresh <= 0 {
		cfg.JWKSRefresh = DefaultJWKSRefresh
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	if cfg.JWKSFile != "" && !filepath.IsAbs(cfg.JWKSFile) && dir != "" {
		cfg.JWKSFile = filepath.Join(dir, cfg.JWKSFile)
	}
	j := &JWT{
		cfg:  cfg,
		algs: algs,
		// No redirects to elsewhere are needed to fetch a key set; a
		// timeout bounds a provider that does not answer.
		client: &http.Client{Timeout: cfg.Timeout},
		now:    time.Now,
	}
	if cfg.JWKSFile != "" {
		if err := j.Reload(context.Background()); err != nil {
			return nil, err
		}
	}
	return j, nil
}

func algList() string {
	var s []string
	for _, a := range jwtAlgorithms {
		s = append(s, string(a))
	}
	return strings.Join(s, ", ")
}

func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("want a URL like https://idp.example.com/.well-known/jwks.json")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("http on %s: want https (keys fetched in clear could be replaced on the way), or http on a loopback host", host)
	}
	return fmt.Errorf("scheme %q: want https", u.Scheme)
}

// Reload re-reads the JWKS file, or fetches the JWKS URL. On error the
// keys loaded before stay in force.
func (j *JWT) Reload(ctx context.Context) error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	return j.load(ctx)
}

// load reads the key set; the caller holds fetchMu.
func (j *JWT) load(ctx context.Context) error {
	var data []byte
	var where string
	if j.cfg.JWKSFile != "" {
		where = j.cfg.JWKSFile
		b, err := os.ReadFile(j.cfg.JWKSFile)
		if err != nil {
			return fmt.Errorf("jwt: jwks_file: %w", err)
		}
		data = b
	} else {
		where = j.cfg.JWKSURL
		j.lastFetch = j.now()
		b, err := j.fetch(ctx)
		if err != nil {
			j.lastErr = fmt.Errorf("jwt: jwks_url %s: %w", j.cfg.JWKSURL, err)
			return j.lastErr
		}
		data = b
	}
	set, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("jwt: JWKS %s: %w", where, err)
	}
	j.keys.Store(set)
	j.lastErr = nil
	return nil
}

func (j *JWT) fetch(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxJWKSBytes)
	}
	return b, nil
}

// parseJWKS reads a key set of public signing keys. A private or
// symmetric key is refused: it would be a secret in the wrong place, and
// a symmetric one would let anyone who reads the set sign tokens.
func parseJWKS(data []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("no keys")
	}
	for i, k := range set.Keys {
		name := fmt.Sprintf("key %d", i+1)
		if k.KeyID != "" {
			name = fmt.Sprintf("key %q", k.KeyID)
		}
		if _, sym := k.Key.([]byte); sym || !k.IsPublic() {
			return nil, fmt.Errorf("%s is not a public key: a JWKS for verifying tokens holds public keys only", name)
		}
		if !k.Valid() {
			return nil, fmt.Errorf("%s is not a valid key", name)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("%s: use %q: want sig", name, k.Use)
		}
	}
	return &set, nil
}

// looksLikeJWT reports whether token is a JWS in compact form with a
// JSON header: three base64url parts. Other tokens are not this
// source's to judge.
func looksLikeJWT(token string) (header map[string]any, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, false
	}
	if json.Unmarshal(b, &header) != nil {
		return nil, false
	}
	_, ok = header["alg"]
	return header, ok
}

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// Authenticate verifies a JWT and names its principal. A token that is
// not a JWT is ErrUnknownToken; a JWT that fails a check is rejected with
// the check that failed. Keys that cannot be fetched are an error that
// is neither (the token may be fine).
func (j *JWT) Authenticate(ctx context.Context, token string) (Principal, error) {
	header, ok := looksLikeJWT(token)
	if !ok {
		return Principal{}, ErrUnknownToken
	}
	alg, _ := header["alg"].(string)
	if !slices.Contains(j.algs, jose.SignatureAlgorithm(alg)) {
		return Principal{}, reject("JWT algorithm %q not accepted (want %s)", alg, strings.Join(j.cfg.Algorithms, ", "))
	}
	tok, err := jwt.ParseSigned(token, j.algs)
	if err != nil {
		return Principal{}, reject("malformed JWT")
	}
	kid := tok.Headers[0].KeyID
	keys, err := j.keysFor(ctx, kid)
	if err != nil {
		return Principal{}, err
	}
	if len(keys) == 0 {
		return Principal{}, reject("JWT signed with key id %q, which the JWKS does not hold", kid)
	}
	var std jwt.Claims
	var custom map[string]any
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if err := tok.Claims(k.Key, &std, &custom); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return Principal{}, reject("JWT signature does not verify with the provider's keys")
	}
	if std.Expiry == nil {
		return Principal{}, reject("JWT has no exp claim")
	}
	exp := jwt.Expected{Issuer: j.cfg.Issuer, AnyAudience: jwt.Audience{j.cfg.Audience}, Time: j.now()}
	if err := std.ValidateWithLeeway(exp, j.cfg.Leeway); err != nil {
		switch {
		case errors.Is(err, jwt.ErrExpired):
			return Principal{}, reject("JWT expired at %s", std.Expiry.Time().UTC().Format(time.RFC3339))
		case errors.Is(err, jwt.ErrNotValidYet):
			return Principal{}, reject("JWT not valid before %s", std.NotBefore.Time().UTC().Format(time.RFC3339))
		case errors.Is(err, jwt.ErrInvalidIssuer):
			return Principal{}, reject("JWT issuer %q is not %q", std.Issuer, j.cfg.Issuer)
		case errors.Is(err, jwt.ErrInvalidAudience):
			return Principal{}, reject("JWT audience does not include %q", j.cfg.Audience)
		case errors.Is(err, jwt.ErrIssuedInTheFuture):
			return Principal{}, reject("JWT issued in the future")
		}
		return Principal{}, reject("JWT claims: %v", err)
	}
	name, _ := custom[j.cfg.NameClaim].(string)
	if name == "" {
		return Principal{}, reject("JWT has no %s claim naming who it is", j.cfg.NameClaim)
	}
	role, ok := j.role(custom[j.cfg.RoleClaim])
	if !ok {
		return Principal{}, reject("JWT claim %s grants no role (want one of %s)", j.cfg.RoleClaim, strings.Join(slices.Sorted(maps.Keys(j.cfg.Roles)), ", "))
	}
	return Principal{Name: name, Role: role, Source: "jwt"}, nil
}

// role maps the role claim's value (a string or a list of them) to the
// most capable role its values grant.
func (j *JWT) role(v any) (Role, bool) {
	var values []string
	switch v := v.(type) {
	case string:
		values = []string{v}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				values = append(values, s)
			}
		}
	}
	best := -1
	for _, s := range values {
		if r, ok := j.cfg.Roles[s]; ok {
			if i := slices.Index(roleRank, r); i >= 0 && (best < 0 || i < best) {
				best = i
			}
		}
	}
	if best < 0 {
		return "", false
	}
	return roleRank[best], true
}

// keysFor returns the keys that may have signed a token naming kid (all
// of them when kid is empty), fetching the set first when it was never
// fetched, or again when kid is unknown and the last fetch is older than
// JWKSRefresh (the provider rotated its keys).
func (j *JWT) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	find := func(set *jose.JSONWebKeySet) []jose.JSONWebKey {
		if set == nil {
			return nil
		}
		if kid == "" {
			return set.Keys
		}
		return set.Key(kid)
	}
	set := j.keys.Load()
	if ks := find(set); len(ks) > 0 || j.cfg.JWKSURL == "" {
		return ks, nil
	}
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	// Another request may have fetched while this one waited.
	if cur := j.keys.Load(); cur != set {
		if ks := find(cur); len(ks) > 0 {
			return ks, nil
		}
	}
	since := j.now().Sub(j.lastFetch)
	if j.keys.Load() != nil && since < j.cfg.JWKSRefresh {
		return nil, nil
	}
	if j.keys.Load() == nil && j.lastErr != nil && since < jwksRetryAfterFailure {
		// No keys yet and the provider just failed: answer at once
		// rather than make every request wait out a fetch timeout.
		return nil, j.lastErr
	}
	if err := j.load(ctx); err != nil {
		if j.keys.Load() == nil {
			return nil, err
		}
		// The provider is away but keys are known: the kid is unknown
		// to them.
		return nil, nil
	}
	return find(j.keys.Load()), nil
}
