// Package config reads talon.yaml: which state store, where the schedule
// is, the listen address, auth tokens, executor settings, the run log
// directory and the node name.
//
// Every key is optional. Load keeps each value's position so Validate can
// report every problem as file:line:col; WithDefaults fills the defaults
// apart from Validate, so the CLI can apply flags in between.
//
// A single file may hold both config and schedule (the quick start is one
// file): Load skips the schedule's top-level keys (jobs, calendars,
// resources) and keys starting with "x-", and internal/schedule skips this
// package's keys in turn.
//
// Relative paths (schedule, logs, a sqlite state path, token and key
// files) are kept as written; Resolve joins them to the config file's
// directory, which is what they are relative to.
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/talonhq/talon/internal/suggest"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/schedule"
	"gopkg.in/yaml.v3"
)

// Defaults used by WithDefaults.
const (
	DefaultState  = "sqlite:talon.db"
	DefaultListen = "127.0.0.1:7070"
	DefaultLogs   = "talon-logs"
)

// Roles a token may have, from least to most powerful; agent is for
// `talon agent` nodes.
var Roles = []string{"viewer", "operator", "admin", "agent"}

// Config is talon.yaml.
type Config struct {
	// File is the file the config was read from, "" when built in code.
	File string
	// HasSchedule reports whether File also holds schedule keys; then
	// WithDefaults makes it the schedule when Schedule is empty.
	HasSchedule bool

	// State is the state store: "sqlite:PATH" or "postgres://…".
	// Default "sqlite:talon.db".
	State string
	// Schedule is a schedule file or directory. Default: File itself
	// when it holds jobs, else none (the CLI asks for one).
	Schedule string
	// Listen is the HTTP address. Default "127.0.0.1:7070"; anything but a
	// loopback address needs TLS.
	Listen string
	// TLS, when set, serves HTTPS with this certificate and key.
	TLS *TLS
	// Auth holds the API tokens; none means no API access beyond
	// loopback, as the API package decides.
	Auth Auth
	// Executors holds settings of executors that need them.
	Executors Executors
	// Logs is the directory for run logs. Default "talon-logs".
	Logs string
	// Lease is how long a scheduler may go without a heartbeat before its
	// peers on a shared PostgreSQL declare its runs lost; it heartbeats
	// every Lease/3. Zero: the engine's default (30s). Between 3s and 10m.
	Lease time.Duration
	// Node names this scheduler in run rows (Run.Owner). Default empty:
	// the CLI uses the host name.
	Node string

	pos map[string]posValue
}

// TLS is a certificate and its key, both PEM files.
type TLS struct {
	Cert string
	Key  string
}

// Auth holds API tokens.
type Auth struct {
	Tokens []Token
}

// Token grants a role to whoever presents a secret. The secret itself is
// never in the config: either its SHA-256 (hex) or a file holding it.
type Token struct {
	Name        string
	Role        string
	TokenSHA256 string
	TokenFile   string
}

// Executors holds per-executor settings.
type Executors struct {
	SSH *SSH
	SGE *SGE
}

// SSH configures the ssh executor.
type SSH struct {
	User       string
	Port       int // default 22, as the ssh executor decides
	KeyFile    string
	KnownHosts string
}

// SGE configures the sge executor.
type SGE struct {
	Queue string
	Cell  string
	Root  string // SGE_ROOT
}

// posValue is where a value was read and what it was, so Validate points
// at the file only while the value is still the one read there (a flag
// may have replaced it).
type posValue struct {
	pos schedule.Pos
	val string
}

var (
	topKeys = []string{"state", "schedule", "listen", "tls", "auth", "executors", "logs", "node", "lease"}
	// scheduleKeys are internal/schedule's top-level keys.
	scheduleKeys  = []string{"jobs", "calendars", "resources"}
	tlsKeys       = []string{"cert", "key"}
	authKeys      = []string{"tokens"}
	tokenKeys     = []string{"name", "role", "token_sha256", "token_file"}
	executorsKeys = []string{"ssh", "sge"}
	sshKeys       = []string{"user", "port", "key_file", "known_hosts"}
	sgeKeys       = []string{"queue", "cell", "root"}
)

// Load reads the config file at path. Trouble reading it is returned
// wrapped (errors.Is(err, fs.ErrNotExist) works); problems in its YAML,
// unknown keys and values of the wrong type are a schedule.ErrorList.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return LoadBytes(path, data)
}

// LoadBytes reads a config from data; name is used in positions.
func LoadBytes(name string, data []byte) (c *Config, err error) {
	c = &Config{File: name, pos: map[string]posValue{}}
	r := &reader{c: c, file: name}
	defer func() {
		// yaml.v3 has panicked on malformed input in the past.
		if p := recover(); p != nil {
			c, err = nil, schedule.ErrorList{{Pos: schedule.Pos{File: name, Line: 1, Col: 1}, Msg: fmt.Sprintf("invalid YAML: %v", p)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			r.errs = append(r.errs, yamlError(name, err))
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		r.top(doc.Content[0])
	}
	if len(r.errs) > 0 {
		r.errs.Sort()
		return nil, r.errs
	}
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(name string, err error) *schedule.Error {
	msg, line := err.Error(), 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n >= 1 {
			line = n
		}
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &schedule.Error{Pos: schedule.Pos{File: name, Line: line, Col: 1}, Msg: "invalid YAML: " + msg}
}

// Resolve returns p relative to the config file's directory, unless p is
// absolute or the config was not read from a file.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c *Config) WithDefaults() *Config {
	out := *c
	if out.State == "" {
		out.State = DefaultState
	}
	if out.Listen == "" {
		out.Listen = DefaultListen
	}
	if out.Logs == "" {
		out.Logs = DefaultLogs
	}
	if out.Schedule == "" && out.HasSchedule {
		out.Schedule = out.File
	}
	out.Auth.Tokens = append([]Token(nil), c.Auth.Tokens...)
	return &out
}

// Validate reports every problem with c's values as a schedule.ErrorList,
// positioned where the value was read when it still is that value. It
// does not fill defaults; call it on WithDefaults' result to check what
// will be used.
func (c *Config) Validate() error {
	v := &validator{c: c}
	if c.State != "" {
		v.state()
	}
	if c.Listen != "" {
		v.listen()
	}
	if c.TLS != nil {
		if c.TLS.Cert == "" {
			v.errf("tls", "tls: missing cert")
		}
		if c.TLS.Key == "" {
			v.errf("tls", "tls: missing key")
		}
	}
	v.tokens()
	if s := c.Executors.SSH; s != nil && (s.Port < 0 || s.Port > 65535) {
		v.errf("executors.ssh.port", "executors: ssh: port: want 1 to 65535, not %d", s.Port)
	}
	if len(v.errs) == 0 {
		return nil
	}
	v.errs.Sort()
	return v.errs
}

type validator struct {
	c    *Config
	errs schedule.ErrorList
}

// at is the position of the value at key, when it is still the one read
// from the file; otherwise the file (or "config") without a line.
func (v *validator) at(key string, val string) schedule.Pos {
	if p, ok := v.c.pos[key]; ok && p.val == val {
		return p.pos
	}
	file := v.c.File
	if file == "" {
		file = "config"
	}
	return schedule.Pos{File: file}
}

func (v *validator) errf(key, format string, args ...any) {
	v.hintf(key, v.value(key), "", format, args...)
}

func (v *validator) hintf(key, val, hint, format string, args ...any) {
	v.errs = append(v.errs, &schedule.Error{Pos: v.at(key, val), Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// value is the current text of the value at key, to compare with the one
// read.
func (v *validator) value(key string) string {
	c := v.c
	switch key {
	case "state":
		return c.State
	case "listen":
		return c.Listen
	case "executors.ssh.port":
		if c.Executors.SSH != nil {
			return strconv.Itoa(c.Executors.SSH.Port)
		}
	}
	if p, ok := c.pos[key]; ok {
		return p.val // structural keys (tls, tokens) carry no value of their own
	}
	return ""
}

func (v *validator) state() {
	s := v.c.State
	const hint = "want sqlite:PATH or postgres://USER@HOST/DB"
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		if strings.TrimPrefix(s, "sqlite:") == "" {
			v.hintf("state", s, hint, "state: missing the database path after sqlite:")
		}
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			v.hintf("state", s, hint, "state: invalid URL: %v", errors.Unwrap(err))
		}
	default:
		v.hintf("state", s, hint, "state: unknown store %q", s)
	}
}

func (v *validator) listen() {
	s := v.c.Listen
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.hintf("listen", s, "want HOST:PORT like 127.0.0.1:7070", "listen: invalid address %q", s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.hintf("listen", s, "want HOST:PORT like 127.0.0.1:7070", "listen: invalid port %q", port)
		return
	}
	if v.c.TLS != nil || isLoopback(host) {
		return
	}
	// Tokens travel in headers; in clear text they are only safe on
	// loopback.
	v.hintf("listen", s, "set tls: {cert: FILE, key: FILE}, or listen on 127.0.0.1", "listen: %q is reachable from other hosts but tls is not set", s)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]*$`)

func (v *validator) tokens() {
	names := map[string]bool{}
	for i, t := range v.c.Auth.Tokens {
		key := fmt.Sprintf("auth.tokens[%d]", i)
		where := fmt.Sprintf("auth: tokens[%d]: ", i)
		if t.Name == "" {
			v.errf(key, "%smissing name", where)
		} else {
			where = fmt.Sprintf("auth: token %q: ", t.Name)
			if !tokenNameRE.MatchString(t.Name) {
				v.hintf(key+".name", t.Name, "use letters, digits, '_', '.', '@' and '-'", "%sinvalid name", where)
			} else if names[t.Name] {
				v.hintf(key+".name", t.Name, "", "%sname used twice", where)
			}
			names[t.Name] = true
		}
		switch {
		case t.Role == "":
			v.hintf(key, v.value(key), "want one of "+strings.Join(Roles, ", "), "%smissing role", where)
		case !contains(Roles, t.Role):
			v.hintf(key+".role", t.Role, didYouMean(t.Role, Roles, "want one of "+strings.Join(Roles, ", ")), "%sunknown role %q", where, t.Role)
		}
		switch {
		case t.TokenSHA256 == "" && t.TokenFile == "":
			v.hintf(key, v.value(key), "store the hex SHA-256 of the secret, never the secret", "%smissing token_sha256 or token_file", where)
		case t.TokenSHA256 != "" && t.TokenFile != "":
			v.hintf(key+".token_file", t.TokenFile, "", "%swant token_sha256 or token_file, not both", where)
		case t.TokenSHA256 != "":
			if b, err := hex.DecodeString(t.TokenSHA256); err != nil || len(b) != 32 {
				v.hintf(key+".token_sha256", t.TokenSHA256, "try: printf %s SECRET | sha256sum", "%stoken_sha256: want 64 hex digits", where)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// didYouMean suggests the option nearest to name, else returns def.
func didYouMean(name string, options []string, def string) string {
	if hint := suggest.DidYouMean(name, options); hint != "" {
		return hint
	}
	return def
}
