// Package config reads talon.yaml: which state store, where the schedule
// is, the listen address and the URL advertised to runs, the run log
// directory and the heartbeat lease.
//
// Every key is optional. Load keeps each value's position so Validate can
// report every problem as file:line:col; WithDefaults fills the defaults
// apart from Validate, so the CLI can apply flags in between.
//
// tls: serves the API over HTTPS; auth: lists the sources that
// authenticate API callers (tokens, token_file, jwt, or any source a
// program embedding Talon registered with auth.Register), each decoded
// strictly by its source. A listen address other hosts can reach needs
// both, or an explicit insecure: true.
//
// Keys Talon does not act on yet (executors, node) are refused with a
// positioned error that says what to do instead, never accepted and
// ignored.
//
// A single file may hold both config and schedule (the quick start is one
// file): Load skips the schedule's top-level keys (jobs, calendars,
// resources) and keys starting with "x-", and internal/schedule skips this
// package's keys in turn.
//
// Relative paths (schedule, logs, a sqlite state path, tls files) are kept as
// written; Resolve joins them to the config file's directory, which is
// what they are relative to.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/talonhq/talon/internal/suggest"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
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
	// Listen is the HTTP address. Default "127.0.0.1:7070". An address
	// other hosts can reach (anything but 127.0.0.0/8, ::1, localhost)
	// needs TLS and an Auth source, or Insecure.
	Listen string
	// AdvertiseURL is the URL runs are given as TALON_URL, to report
	// progress and artifacts: the scheduler's address as they reach it
	// (a host name other hosts resolve, a load balancer, a TLS proxy).
	// Default: the listen address, with a loopback host when it listens
	// on every interface — fine for local runs, not for runs on other
	// hosts. An absolute http or https URL without a path; https under
	// TLS.
	AdvertiseURL string
	// TLS, when set, serves the API over HTTPS.
	TLS *TLS
	// Auth are the sources that authenticate API callers, in the order
	// written. None: anonymous callers may do everything, which serve
	// allows only on a loopback address.
	Auth []AuthSource
	// Insecure allows a listen address other hosts can reach without TLS
	// or without an auth source. serve logs a warning at every start.
	Insecure bool
	// Logs is the directory for run logs. Default "talon-logs".
	Logs string
	// Lease is how long a scheduler may go without a heartbeat before its
	// peers on a shared PostgreSQL declare its runs lost; it heartbeats
	// every Lease/3. Zero: the engine's default (30s). Between 3s and 10m.
	Lease time.Duration

	pos map[string]posValue
}

// TLS is the tls: mapping. Paths are as written; Resolve joins them to
// the config file's directory.
type TLS struct {
	// Cert and Key are PEM files: the server's certificate (with its
	// chain) and private key. Re-read on SIGHUP.
	Cert, Key string
	// CA is the PEM file of the CA that signed Cert, given to runs as
	// TALON_CA so that `talon progress` in a job can verify the server.
	// Optional: without it, runs get Cert itself when it is self-signed,
	// else nothing (the system's roots verify it).
	CA string
}

// Exposable reports whether the config allows a listen address other
// hosts can reach: with TLS and an auth source, or with insecure: true.
func (c *Config) Exposable() bool {
	return (c.TLS != nil && len(c.Auth) > 0) || c.Insecure
}

// posValue is where a value was read and what it was, so Validate points
// at the file only while the value is still the one read there (a flag
// may have replaced it).
type posValue struct {
	pos schedule.Pos
	val string
}

var (
	topKeys = []string{"state", "schedule", "listen", "advertise_url", "logs", "lease", "tls", "auth", "insecure"}
	// scheduleKeys are internal/schedule's top-level keys.
	scheduleKeys = []string{"jobs", "calendars", "resources"}
	// notYet are keys of talon.yaml that Talon will read but does not
	// act on yet, with why and what to do meanwhile. Accepting them
	// silently would promise what Talon does not do.
	notYet = map[string][2]string{
		"executors": {"executors is not supported yet: the local and inprocess executors take no settings",
			"remove executors:"},
		"node": {"node is not supported yet: each scheduler names itself with a random instance id, logged at start",
			"remove node:"},
	}
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
			r.errs = append(r.errs, schedule.SyntaxError(name, data, err))
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
		if msg, hint := c.CheckListen(c.Listen); msg != "" {
			v.hintf("listen", c.Listen, hint, "listen: %s", msg)
		}
	}
	if c.AdvertiseURL != "" {
		if msg, hint := c.CheckAdvertiseURL(c.AdvertiseURL); msg != "" {
			v.hintf("advertise_url", c.AdvertiseURL, hint, "advertise_url: %s", msg)
		}
	}
	if c.TLS != nil {
		if c.TLS.Cert == "" {
			v.hintf("tls", "", "tls: {cert: server.pem, key: server-key.pem}", "tls: cert: required (the server's certificate, PEM)")
		}
		if c.TLS.Key == "" {
			v.hintf("tls", "", "tls: {cert: server.pem, key: server-key.pem}", "tls: key: required (the certificate's private key, PEM)")
		}
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

func (v *validator) hintf(key, val, hint, format string, args ...any) {
	v.errs = append(v.errs, &schedule.Error{Pos: v.at(key, val), Msg: fmt.Sprintf(format, args...), Hint: hint})
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
		v.hintf("state", s, hint, "state: unknown store %s", suggest.Quote(s))
	}
}

// CheckListen says what is wrong with a listen address, with a hint, or
// returns "" when nothing is. It must be HOST:PORT; a host other hosts
// can reach needs TLS and an auth source, or Insecure (Exposable):
// anything less would serve every run's controls to the network in
// clear text, or to anyone.
func (c *Config) CheckListen(addr string) (problem, hint string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("invalid address %s: want HOST:PORT like %s", suggest.Quote(addr), DefaultListen), ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("invalid port %s: want HOST:PORT like %s", suggest.Quote(port), DefaultListen), ""
	}
	if IsLoopback(host) || c.Exposable() {
		return "", ""
	}
	var lacks, add []string
	if c.TLS == nil {
		lacks = append(lacks, "tls:")
		add = append(add, "tls: {cert: FILE, key: FILE}")
	}
	if len(c.Auth) == 0 {
		lacks = append(lacks, "auth:")
		add = append(add, "an auth: source (tokens, token_file or jwt)")
	}
	return fmt.Sprintf("%s is reachable from other hosts, so it needs tls: and an auth: source (or insecure: true); this config lacks %s", suggest.Quote(addr), strings.Join(lacks, " and ")),
		fmt.Sprintf("add %s; or insecure: true to serve it without, logged at every start; or listen on %s", strings.Join(add, " and "), net.JoinHostPort("127.0.0.1", port))
}

// CheckAdvertiseURL says what is wrong with an advertise_url, with a
// hint, or returns "" when nothing is. Runs call it with talon's client,
// which adds the API's paths to it: it must be an absolute http or https
// URL of a host (and port), without a user, path, query or fragment, and
// https when the server serves TLS (runs would otherwise speak plain HTTP
// to a TLS port).
func (c *Config) CheckAdvertiseURL(s string) (problem, hint string) {
	const example = "https://talon.example.com:7070"
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("invalid URL %s: %v", suggest.Quote(s), errors.Unwrap(err)), "want a URL like " + example
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%s is not an http or https URL", suggest.Quote(s)), "want a URL like " + example
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%s has no host", suggest.Quote(s)), "want a URL like " + example
	case u.User != nil:
		return fmt.Sprintf("%s holds a user: runs authenticate with their own token (TALON_TOKEN)", suggest.Quote(u.Redacted())), "remove the user@ part"
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Sprintf("%s has a path, query or fragment: Talon serves its API and dashboard at the root of its address", suggest.Quote(s)), "want a URL like " + example
	case u.Port() != "":
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("invalid port %s in %s", suggest.Quote(u.Port()), suggest.Quote(s)), "want a URL like " + example
		}
	}
	if c.TLS != nil && u.Scheme != "https" {
		return fmt.Sprintf("%s is http, but the server serves TLS (tls:)", suggest.Quote(s)), "use https://" + u.Host
	}
	return "", ""
}

// IsLoopback reports whether host names this machine only: localhost or a
// loopback IP. An empty host (":7070") means every interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
