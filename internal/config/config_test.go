package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/schedule"
)

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var list schedule.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want schedule.ErrorList: %v", err, err)
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Error()
	}
	return out
}

func TestLoadFull(t *testing.T) {
	data := `# talon.yaml with the quick start's schedule in it
state: postgres://talon@db/talon
schedule: ./schedule
listen: 127.0.0.1:8443
advertise_url: http://talon.example.com:8443
logs: /var/log/talon
x-defaults: &d {poll: 5m}
jobs:
  a: {command: [x]}
`
	c, err := LoadBytes("/etc/talon/talon.yaml", []byte(data))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	want := &Config{
		File:         "/etc/talon/talon.yaml",
		HasSchedule:  true,
		State:        "postgres://talon@db/talon",
		Schedule:     "./schedule",
		Listen:       "127.0.0.1:8443",
		AdvertiseURL: "http://talon.example.com:8443",
		Logs:         "/var/log/talon",
	}
	got := *c
	got.pos = nil
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("config:\n got %+v\nwant %+v", &got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if got, want := c.Resolve("schedule"), "/etc/talon/schedule"; got != want {
		t.Errorf("Resolve = %q, want %q", got, want)
	}
	if got := c.Resolve("/abs"); got != "/abs" {
		t.Errorf("Resolve(/abs) = %q", got)
	}
}

// Keys Talon does not act on yet are refused where they are written,
// saying what to do instead.
func TestKeysNotSupportedYet(t *testing.T) {
	data := "executors: {ssh: {user: batch}}\n" +
		"node: sched-1\n"
	_, err := LoadBytes("t.yaml", []byte(data))
	want := []string{
		`t.yaml:1:1: executors is not supported yet: the local and inprocess executors take no settings (remove executors:)`,
		`t.yaml:2:1: node is not supported yet: each scheduler names itself with a random instance id, logged at start (remove node:)`,
	}
	if got := errLines(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Config
	}{
		{
			name: "empty file",
			yaml: "",
			want: Config{File: "t.yaml", State: DefaultState, Listen: DefaultListen, Logs: DefaultLogs},
		},
		{
			name: "schedule keys make the file its own schedule",
			yaml: "calendars: {}\n",
			want: Config{File: "t.yaml", HasSchedule: true, Schedule: "t.yaml", State: DefaultState, Listen: DefaultListen, Logs: DefaultLogs},
		},
		{
			name: "set values stay",
			yaml: "state: sqlite:/tmp/x.db\nlisten: localhost:1\nlogs: l\nschedule: s\njobs: {}\n",
			want: Config{File: "t.yaml", HasSchedule: true, Schedule: "s", State: "sqlite:/tmp/x.db", Listen: "localhost:1", Logs: "l"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes("t.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("LoadBytes: %v", err)
			}
			d := c.WithDefaults()
			got := *d
			got.pos = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("WithDefaults:\n got %+v\nwant %+v", got, tt.want)
			}
			if err := d.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if c.State != "" && tt.yaml == "" {
				t.Error("WithDefaults changed its receiver")
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "yaml syntax",
			yaml: "state: [\n",
			want: []string{"t.yaml:1:1: invalid YAML: did not find expected node content"},
		},
		{
			// yaml.v3 says "line 1"; the problem is the indentation of
			// line 3.
			name: "yaml syntax further down",
			yaml: "state: sqlite:x.db\nlogs: l\n  listen: 127.0.0.1:1\n",
			want: []string{"t.yaml:3:3: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "unknown keys with hints",
			yaml: "stat: x\nlisten: 127.0.0.1:1\nlog: l\n",
			want: []string{
				`t.yaml:1:1: unknown key "stat" (did you mean "state"?)`,
				`t.yaml:3:1: unknown key "log" (did you mean "logs"?)`,
			},
		},
		{
			name: "bad types",
			yaml: "state: [a]\nlisten: {a: 1}\n",
			want: []string{
				`t.yaml:1:8: state: want a string, not a list`,
				`t.yaml:2:9: listen: want a string, not a mapping`,
			},
		},
		{
			name: "repeated key",
			yaml: "logs: a\nlogs: b\n",
			want: []string{`t.yaml:2:1: key "logs" repeated (first at line 1)`},
		},
		{
			name: "unknown auth source",
			yaml: "auth:\n  token: {}\n",
			want: []string{`t.yaml:2:3: auth: unknown source "token" (did you mean "tokens"?)`},
		},
		{
			name: "empty auth",
			yaml: "auth: {}\n",
			want: []string{`t.yaml:1:7: auth: no source (add tokens:, token_file: or jwt:, or remove auth:)`},
		},
		{
			name: "tls keys",
			yaml: "tls: {cert: c.pem, keys: k.pem}\ninsecure: maybe\n",
			want: []string{
				`t.yaml:1:20: tls: unknown key "keys" (did you mean "key"?)`,
				`t.yaml:2:11: insecure: want true or false, not "maybe"`,
			},
		},
		{
			name: "top level not a mapping",
			yaml: "- a\n",
			want: []string{`t.yaml:1:1: want a mapping, not a list`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(tt.yaml))
			got := errLines(t, err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		modify func(c *Config)
		want   []string
	}{
		{
			name: "bad state",
			yaml: "state: mysql://x\n",
			want: []string{`t.yaml:1:8: state: unknown store "mysql://x" (want sqlite:PATH or postgres://USER@HOST/DB)`},
		},
		{
			name: "empty sqlite path",
			yaml: "state: \"sqlite:\"\n",
			want: []string{`t.yaml:1:8: state: missing the database path after sqlite: (want sqlite:PATH or postgres://USER@HOST/DB)`},
		},
		{
			name: "bad listen addresses",
			yaml: "listen: 7070\n",
			want: []string{`t.yaml:1:9: listen: invalid address "7070": want HOST:PORT like 127.0.0.1:7070`},
		},
		{
			name: "non-loopback listen",
			yaml: "listen: 0.0.0.0:7070\n",
			want: []string{`t.yaml:1:9: listen: "0.0.0.0:7070" is reachable from other hosts, so it needs tls: and an auth: source (or insecure: true); this config lacks tls: and auth: (add tls: {cert: FILE, key: FILE} and an auth: source (tokens, token_file or jwt); or insecure: true to serve it without, logged at every start; or listen on 127.0.0.1:7070)`},
		},
		{
			name: "every interface",
			yaml: "listen: \":7070\"\n",
			want: []string{`t.yaml:1:9: listen: ":7070" is reachable from other hosts, so it needs tls: and an auth: source (or insecure: true); this config lacks tls: and auth: (add tls: {cert: FILE, key: FILE} and an auth: source (tokens, token_file or jwt); or insecure: true to serve it without, logged at every start; or listen on 127.0.0.1:7070)`},
		},
		{
			name: "loopback addresses",
			yaml: "listen: \"[::1]:7070\"\n",
		},
		{
			name:   "value replaced by a flag loses its position",
			yaml:   "listen: 127.0.0.1:1\n",
			modify: func(c *Config) { c.Listen = "10.0.0.1:7070" },
			want:   []string{`t.yaml: listen: "10.0.0.1:7070" is reachable from other hosts, so it needs tls: and an auth: source (or insecure: true); this config lacks tls: and auth: (add tls: {cert: FILE, key: FILE} and an auth: source (tokens, token_file or jwt); or insecure: true to serve it without, logged at every start; or listen on 127.0.0.1:7070)`},
		},
		{
			name: "non-loopback with tls but no auth",
			yaml: "listen: 0.0.0.0:7070\ntls: {cert: c.pem, key: k.pem}\n",
			want: []string{`t.yaml:1:9: listen: "0.0.0.0:7070" is reachable from other hosts, so it needs tls: and an auth: source (or insecure: true); this config lacks auth: (add an auth: source (tokens, token_file or jwt); or insecure: true to serve it without, logged at every start; or listen on 127.0.0.1:7070)`},
		},
		{
			name: "non-loopback with auth but no tls",
			yaml: "listen: 0.0.0.0:7070\nauth: {tokens: [{name: a, role: admin, token_sha256: " + sha + "}]}\n",
			want: []string{`t.yaml:1:9: listen: "0.0.0.0:7070" is reachable from other hosts, so it needs tls: and an auth: source (or insecure: true); this config lacks tls: (add tls: {cert: FILE, key: FILE}; or insecure: true to serve it without, logged at every start; or listen on 127.0.0.1:7070)`},
		},
		{
			name: "non-loopback with tls and auth",
			yaml: "listen: 0.0.0.0:7070\ntls: {cert: c.pem, key: k.pem}\nauth: {tokens: [{name: a, role: admin, token_sha256: " + sha + "}]}\n",
		},
		{
			name: "non-loopback, insecure",
			yaml: "listen: 0.0.0.0:7070\ninsecure: true\n",
		},
		{
			name: "advertise_url",
			yaml: "advertise_url: https://talon.example.com:7070/\n",
		},
		{
			name: "advertise_url of a proxy terminating TLS",
			yaml: "advertise_url: https://talon.example.com\n",
		},
		{
			name: "advertise_url, IPv6",
			yaml: "advertise_url: http://[2001:db8::1]:7070\n",
		},
		{
			name: "advertise_url under tls",
			yaml: "advertise_url: https://talon.example.com:7070\ntls: {cert: c.pem, key: k.pem}\n",
		},
		{
			name: "advertise_url http under tls",
			yaml: "advertise_url: http://talon.example.com:7070\ntls: {cert: c.pem, key: k.pem}\n",
			want: []string{`t.yaml:1:16: advertise_url: "http://talon.example.com:7070" is http, but the server serves TLS (tls:) (use https://talon.example.com:7070)`},
		},
		{
			name: "advertise_url not absolute",
			yaml: "advertise_url: talon.example.com:7070\n",
			want: []string{`t.yaml:1:16: advertise_url: "talon.example.com:7070" is not an http or https URL (want a URL like https://talon.example.com:7070)`},
		},
		{
			name: "advertise_url without a host",
			yaml: "advertise_url: \"http:///api\"\n",
			want: []string{`t.yaml:1:16: advertise_url: "http:///api" has no host (want a URL like https://talon.example.com:7070)`},
		},
		{
			name: "advertise_url of another scheme",
			yaml: "advertise_url: ftp://talon.example.com\n",
			want: []string{`t.yaml:1:16: advertise_url: "ftp://talon.example.com" is not an http or https URL (want a URL like https://talon.example.com:7070)`},
		},
		{
			name: "advertise_url with a path",
			yaml: "advertise_url: https://example.com/talon\n",
			want: []string{`t.yaml:1:16: advertise_url: "https://example.com/talon" has a path, query or fragment: Talon serves its API and dashboard at the root of its address (want a URL like https://talon.example.com:7070)`},
		},
		{
			name: "advertise_url with a user",
			yaml: "advertise_url: https://bob:pw@example.com\n",
			want: []string{`t.yaml:1:16: advertise_url: "https://bob:xxxxx@example.com" holds a user: runs authenticate with their own token (TALON_TOKEN) (remove the user@ part)`},
		},
		{
			name: "advertise_url with a bad port",
			yaml: "advertise_url: http://example.com:99999\n",
			want: []string{`t.yaml:1:16: advertise_url: invalid port "99999" in "http://example.com:99999" (want a URL like https://talon.example.com:7070)`},
		},
		{
			name: "tls without a key",
			yaml: "tls: {cert: c.pem}\n",
			want: []string{`t.yaml:1:6: tls: key: required (the certificate's private key, PEM) (tls: {cert: server.pem, key: server-key.pem})`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes("t.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("LoadBytes: %v", err)
			}
			if tt.modify != nil {
				tt.modify(c)
			}
			got := errLines(t, c.Validate())
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "talon.yaml")
	if err := os.WriteFile(p, []byte("logs: l\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Logs != "l" || c.File != p {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

// A one-file quick start must load as both config and schedule.
func TestOneFileQuickStart(t *testing.T) {
	data := []byte("state: sqlite:talon.db\nlisten: 127.0.0.1:7070\njobs:\n  hello:\n    command: [echo, hello]\n")
	c, err := LoadBytes("talon.yaml", data)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if !c.HasSchedule {
		t.Error("HasSchedule = false")
	}
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"local"}}, "talon.yaml", data)
	if err != nil {
		t.Fatalf("schedule: %v", err)
	}
	if len(s.Jobs) != 1 {
		t.Errorf("jobs = %d", len(s.Jobs))
	}
}

func TestLease(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       time.Duration
		err        string
	}{
		{name: "set", yaml: "lease: 6s\n", want: 6 * time.Second},
		{name: "unset", yaml: "logs: x\n", want: 0},
		{name: "too short", yaml: "lease: 1s\n", err: "config.yaml:1:8: lease: want between 3s and 10m0s, not 1s"},
		{name: "not a duration", yaml: "lease: soon\n", err: `config.yaml:1:8: lease: want a duration like 30s, not "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadBytes("config.yaml", []byte(tt.yaml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Lease != tt.want {
				t.Errorf("Lease = %s, want %s", c.Lease, tt.want)
			}
		})
	}
}
