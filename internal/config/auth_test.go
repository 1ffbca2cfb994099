package config

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talonhq/talon/internal/auth"
)

// TestAuthSources builds each source of auth: through its registered
// factory, in the order written, with problems where they are written.
func TestAuthSources(t *testing.T) {
	dir := t.TempDir()
	h := sha256.Sum256([]byte("s3cret"))
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte("bob viewer "+hex.EncodeToString(h[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
		want []string // error lines; none: the sources build
	}{
		{
			name: "tokens and a token file relative to the config",
			yaml: "auth:\n  token_file: tokens\n  tokens:\n    - {name: alice, role: operator, token_sha256: " + sha + "}\n",
		},
		{
			name: "unknown key in an entry, with its position",
			yaml: "auth:\n  tokens:\n    - {name: alice, role: operator, token_sha: " + sha + "}\n",
			want: []string{`CFG:3:37: auth: tokens: [1]: unknown key "token_sha" (did you mean "token_sha256"?)`},
		},
		{
			name: "wrong type",
			yaml: "auth:\n  tokens: alice\n",
			want: []string{"CFG:2:11: auth: tokens: cannot unmarshal !!str `alice` into []auth.TokenEntry"},
		},
		{
			name: "bad role, at the source",
			yaml: "auth:\n  tokens:\n    - {name: alice, role: boss, token_sha256: " + sha + "}\n",
			want: []string{`CFG:2:3: auth: tokens: entry 1: role "boss": want viewer, operator, admin, agent`},
		},
		{
			name: "bad hash is never quoted",
			yaml: "auth:\n  tokens:\n    - {name: alice, role: admin, token_sha256: plaintext-token}\n",
			want: []string{`CFG:2:3: auth: tokens: entry 1: token_sha256: want the 64 hex digits of the token's SHA-256 (printf %s "$TOKEN" | sha256sum)`},
		},
		{
			name: "missing token file",
			yaml: "auth:\n  token_file: nope\n",
			want: []string{`CFG:2:3: auth: token_file: token_file: open ` + filepath.Join(dir, "nope") + `: no such file or directory`},
		},
		{
			name: "jwt settings checked",
			yaml: "auth:\n  jwt:\n    issuer: https://idp\n    jwks_url: http://idp.example.com/jwks\n    algorithms: [HS256]\n    audience: talon\n    role_claim: groups\n    roles: {admins: root}\n    leeway: 1h\n",
			want: []string{`CFG:2:3: auth: jwt: jwks_url: http on idp.example.com: want https (keys fetched in clear could be replaced on the way), or http on a loopback host; algorithms: "HS256" not accepted: want RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (never none, nor HMAC: a JWKS holds public keys); roles: "admins": role "root": want viewer, operator, admin, agent; leeway: want between 0s and 5m0s, not 1h0m0s`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, "talon.yaml")
			c, err := LoadBytes(file, []byte(tt.yaml))
			if err != nil {
				t.Fatalf("LoadBytes: %v", err)
			}
			srcs, err := c.AuthSources()
			got := errLines(t, err)
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], file, "CFG")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(tt.want) > 0 {
				return
			}
			if len(srcs) != len(c.Auth) {
				t.Fatalf("%d sources, want %d", len(srcs), len(c.Auth))
			}
			p, err := auth.NewChain(srcs...).Authenticate(t.Context(), "s3cret")
			if err != nil || p.Name != "bob" || p.Role != auth.RoleViewer || p.Source != "token_file" {
				t.Errorf("token of the file: %+v, %v", p, err)
			}
		})
	}
}
