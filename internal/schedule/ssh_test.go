package schedule

import (
	"strings"
	"testing"

	"github.com/talonhq/talon"
)

// TestSSHKeys: host: and ssh: are the ssh executor's, checked where they
// are written; other executors refuse them.
func TestSSHKeys(t *testing.T) {
	opt := Options{Executors: []string{"inprocess", "local", "ssh"}}
	tests := []struct {
		name     string
		yaml     string
		wantHost string
		wantSSH  *talon.SSHOptions
		wantErr  []string
	}{
		{name: "host and overrides",
			yaml:     "jobs:\n  a:\n    executor: ssh\n    command: [load]\n    host: batch01:2222\n    ssh: {user: etl, key_file: /etc/talon/etl_key, port: 2200}\n",
			wantHost: "batch01:2222", wantSSH: &talon.SSHOptions{User: "etl", KeyFile: "/etc/talon/etl_key", Port: 2200}},
		{name: "host from a resource with an address",
			yaml: "resources:\n  hosts/linux/h01: {capacity: 1, attributes: {address: 10.0.0.5}}\n" +
				"jobs:\n  a:\n    executor: ssh\n    command: [load]\n    resources: {hosts/linux/*: 1}\n"},
		{name: "no host",
			yaml:    "jobs:\n  a:\n    executor: ssh\n    command: [load]\n",
			wantErr: []string{`s.yaml:2:3: job "a": executor ssh needs a host to run on (set host: HOST[:PORT], or request a hosts/... resource whose address attribute names it)`}},
		{name: "resource without an address",
			yaml: "resources:\n  hosts/linux/h01: {capacity: 1}\n" +
				"jobs:\n  a:\n    executor: ssh\n    command: [load]\n    resources: {hosts/linux/*: 1}\n",
			wantErr: []string{`s.yaml:7:17: job "a": resources: resource hosts/linux/h01 has no address attribute, which an ssh run needs to reach it (add attributes: {address: HOST[:PORT]} to hosts/linux/h01)`}},
		{name: "host with another executor",
			yaml:    "jobs:\n  a:\n    command: [load]\n    host: batch01\n    ssh: {user: etl}\n",
			wantErr: []string{`s.yaml:4:5: job "a": host has no effect with executor local (set executor: ssh, or remove host:)`, `s.yaml:5:5: job "a": ssh has no effect with executor local (set executor: ssh, or remove ssh:)`}},
		{name: "bad values",
			yaml: "jobs:\n  a:\n    executor: ssh\n    command: [load]\n    host: \"bad host\"\n    ssh: {user: \"a b\", key_file: rel/key, port: 70000, pass: x}\n",
			wantErr: []string{
				`s.yaml:5:11: job "a": host: invalid host "bad host" (want HOST or HOST:PORT, like batch01.example.com or 10.0.0.5:2222)`,
				`s.yaml:6:17: job "a": ssh: user: invalid user name "a b"`,
				`s.yaml:6:34: job "a": ssh: key_file: "rel/key" is not an absolute path (write the key's absolute path)`,
				`s.yaml:6:49: job "a": ssh: port: want a whole number from 1 to 65535, not 70000`,
				`s.yaml:6:56: job "a": ssh: unknown key "pass"`,
			}},
		{name: "IPv6 without brackets",
			yaml:    "jobs:\n  a:\n    executor: ssh\n    command: [load]\n    host: \"::1\"\n",
			wantErr: []string{`s.yaml:5:11: job "a": host: an IPv6 address needs brackets: [::1]:22 (want HOST or HOST:PORT, like batch01.example.com or 10.0.0.5:2222)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadBytes(opt, "s.yaml", []byte(tt.yaml))
			if tt.wantErr != nil {
				if got := errLines(t, err); strings.Join(got, "\n") != strings.Join(tt.wantErr, "\n") {
					t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantErr, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			j := s.ByName["a"]
			if j.Host != tt.wantHost {
				t.Errorf("Host = %q, want %q", j.Host, tt.wantHost)
			}
			if (j.SSH == nil) != (tt.wantSSH == nil) || (j.SSH != nil && *j.SSH != *tt.wantSSH) {
				t.Errorf("SSH = %+v, want %+v", j.SSH, tt.wantSSH)
			}
		})
	}
}
