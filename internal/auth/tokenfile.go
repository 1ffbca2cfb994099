package auth

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// The token_file source: a file of tokens, re-read on reload (SIGHUP or
// POST /api/v1/reload), so tokens can be added and revoked without a
// restart:
//
//	auth:
//	  token_file: /etc/talon/tokens
//
// Each line is NAME ROLE SHA256HEX, separated by spaces or tabs; blank
// lines and lines starting with # are ignored:
//
//	# name  role      sha256 of the token
//	alice   operator  5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
//
// A file that cannot be read, or has a bad line, is refused as a whole:
// at start the server does not start, on reload the old tokens stay.
func init() { Register("token_file", newTokenFile) }

// TokenFile is the token_file source.
type TokenFile struct {
	path string
	set  atomic.Pointer[tokenSet]
}

var (
	_ Source   = (*TokenFile)(nil)
	_ Reloader = (*TokenFile)(nil)
)

// OpenTokenFile reads the token file at path.
func OpenTokenFile(path string) (*TokenFile, error) {
	tf := &TokenFile{path: path}
	if err := tf.Reload(context.Background()); err != nil {
		return nil, err
	}
	return tf, nil
}

func newTokenFile(decode func(any) error, dir string) (Source, error) {
	var path string
	if err := decode(&path); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("want the path of a file of NAME ROLE SHA256 lines")
	}
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	return OpenTokenFile(path)
}

// Authenticate names the principal of token, or returns ErrUnknownToken.
func (tf *TokenFile) Authenticate(_ context.Context, token string) (Principal, error) {
	return tf.set.Load().lookup(token)
}

// Reload re-reads the file. On error the tokens read before stay in force.
func (tf *TokenFile) Reload(context.Context) error {
	data, err := os.ReadFile(tf.path)
	if err != nil {
		return fmt.Errorf("token_file: %w", err)
	}
	set, err := parseTokenFile(tf.path, data)
	if err != nil {
		return fmt.Errorf("token_file: %w", err)
	}
	tf.set.Store(set)
	return nil
}

func parseTokenFile(path string, data []byte) (*tokenSet, error) {
	var entries []TokenEntry
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			// Never quote the line: it may hold a token pasted by mistake.
			return nil, fmt.Errorf("%s:%d: want NAME ROLE SHA256HEX, got %d fields", path, n, len(f))
		}
		entries = append(entries, TokenEntry{Name: f[0], Role: Role(f[1]), TokenSHA256: f[2]})
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return newTokenSet("token_file", entries, func(i int) string { return fmt.Sprintf("%s:%d", path, lines[i]) })
}
