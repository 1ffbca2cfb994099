package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/schedule"
	"gopkg.in/yaml.v3"
)

// reader decodes the YAML tree, recording positions and structural errors.
type reader struct {
	c    *Config
	file string
	errs schedule.ErrorList
}

func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func (r *reader) pos(n *yaml.Node) schedule.Pos {
	p := schedule.Pos{File: r.file, Line: 1, Col: 1}
	if n != nil && n.Line >= 1 {
		p.Line, p.Col = n.Line, max(n.Column, 1)
	}
	return p
}

func (r *reader) errf(n *yaml.Node, hint, format string, args ...any) {
	r.errs = append(r.errs, &schedule.Error{Pos: r.pos(n), Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// record keeps where the value at key was read.
func (r *reader) record(key string, n *yaml.Node, val string) {
	r.c.pos[key] = posValue{pos: r.pos(n), val: val}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "scalar"
}

// fields returns a mapping's entries by key, reporting unknown and
// repeated keys; entries with a null value are left out.
func (r *reader) fields(where string, n *yaml.Node, known []string, ignore func(string) bool) map[string][2]*yaml.Node {
	dn := deref(n)
	if dn.Kind != yaml.MappingNode {
		r.errf(n, "", "%swant a mapping, not a %s", where, kindName(dn))
		return nil
	}
	out := map[string][2]*yaml.Node{}
	seen := map[string]int{}
	for i := 0; i+1 < len(dn.Content); i += 2 {
		k, v := deref(dn.Content[i]), dn.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			r.errf(k, "", "%swant a name as key, not a %s", where, kindName(k))
			continue
		}
		if line, ok := seen[k.Value]; ok {
			r.errf(k, "", "%skey %q repeated (first at line %d)", where, k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		if ignore != nil && ignore(k.Value) {
			continue
		}
		if !contains(known, k.Value) {
			r.errf(k, didYouMean(k.Value, known, ""), "%sunknown key %q", where, k.Value)
			continue
		}
		if !isNull(v) {
			out[k.Value] = [2]*yaml.Node{k, v}
		}
	}
	return out
}

func (r *reader) str(where string, n *yaml.Node) string {
	dn := deref(n)
	if dn.Kind != yaml.ScalarNode {
		r.errf(n, "", "%swant a string, not a %s", where, kindName(dn))
		return ""
	}
	return dn.Value
}

// strField reads fs[name] as a string into *dst and records its position.
func (r *reader) strField(fs map[string][2]*yaml.Node, where, name, key string, dst *string) {
	kv, ok := fs[name]
	if !ok {
		return
	}
	*dst = r.str(where+name+": ", kv[1])
	r.record(key, kv[1], *dst)
}

func (r *reader) top(n *yaml.Node) {
	if isNull(n) {
		return
	}
	c := r.c
	fs := r.fields("", n, topKeys, func(k string) bool {
		if contains(scheduleKeys, k) {
			c.HasSchedule = true
			return true
		}
		// Extension keys hold anchors, as in the schedule.
		return strings.HasPrefix(k, "x-")
	})
	if fs == nil {
		return
	}
	r.strField(fs, "", "state", "state", &c.State)
	r.strField(fs, "", "schedule", "schedule", &c.Schedule)
	r.strField(fs, "", "listen", "listen", &c.Listen)
	r.strField(fs, "", "logs", "logs", &c.Logs)
	r.strField(fs, "", "node", "node", &c.Node)
	if kv, ok := fs["lease"]; ok {
		r.lease(kv[1])
	}
	if kv, ok := fs["tls"]; ok {
		c.TLS = &TLS{}
		r.record("tls", kv[0], "")
		if tf := r.fields("tls: ", kv[1], tlsKeys, nil); tf != nil {
			r.strField(tf, "tls: ", "cert", "tls.cert", &c.TLS.Cert)
			r.strField(tf, "tls: ", "key", "tls.key", &c.TLS.Key)
		}
	}
	if kv, ok := fs["auth"]; ok {
		r.auth(kv[1])
	}
	if kv, ok := fs["executors"]; ok {
		r.executors(kv[1])
	}
}

// Bounds of lease: shorter leases turn a slow database into lost runs;
// longer ones leave a dead scheduler's runs and resources held for long.
const (
	minLease = 3 * time.Second
	maxLease = 10 * time.Minute
)

func (r *reader) lease(n *yaml.Node) {
	n = deref(n)
	d, err := time.ParseDuration(n.Value)
	switch {
	case n.Kind != yaml.ScalarNode || err != nil:
		r.errf(n, "", "lease: want a duration like 30s, not %q", n.Value)
	case d < minLease || d > maxLease:
		r.errf(n, "", "lease: want between %s and %s, not %s", minLease, maxLease, d)
	default:
		r.c.Lease = d
	}
}

func (r *reader) auth(n *yaml.Node) {
	fs := r.fields("auth: ", n, authKeys, nil)
	kv, ok := fs["tokens"]
	if !ok {
		return
	}
	list := deref(kv[1])
	if list.Kind != yaml.SequenceNode {
		r.errf(kv[1], "", "auth: tokens: want a list of {name, role, token_sha256}, not a %s", kindName(list))
		return
	}
	for i, it := range list.Content {
		where := fmt.Sprintf("auth: tokens[%d]: ", i)
		key := fmt.Sprintf("auth.tokens[%d]", i)
		tf := r.fields(where, it, tokenKeys, nil)
		if tf == nil {
			continue
		}
		var t Token
		r.record(key, it, "")
		r.strField(tf, where, "name", key+".name", &t.Name)
		r.strField(tf, where, "role", key+".role", &t.Role)
		r.strField(tf, where, "token_sha256", key+".token_sha256", &t.TokenSHA256)
		r.strField(tf, where, "token_file", key+".token_file", &t.TokenFile)
		r.c.Auth.Tokens = append(r.c.Auth.Tokens, t)
	}
}

func (r *reader) executors(n *yaml.Node) {
	fs := r.fields("executors: ", n, executorsKeys, nil)
	if kv, ok := fs["ssh"]; ok {
		s := &SSH{}
		r.c.Executors.SSH = s
		const where = "executors: ssh: "
		if sf := r.fields(where, kv[1], sshKeys, nil); sf != nil {
			r.strField(sf, where, "user", "executors.ssh.user", &s.User)
			r.strField(sf, where, "key_file", "executors.ssh.key_file", &s.KeyFile)
			r.strField(sf, where, "known_hosts", "executors.ssh.known_hosts", &s.KnownHosts)
			if pv, ok := sf["port"]; ok {
				dn := deref(pv[1])
				if dn.Kind != yaml.ScalarNode || dn.ShortTag() != "!!int" || dn.Decode(&s.Port) != nil {
					r.errf(pv[1], "", "%sport: want a port number like 22", where)
				} else {
					r.record("executors.ssh.port", pv[1], strconv.Itoa(s.Port))
				}
			}
		}
	}
	if kv, ok := fs["sge"]; ok {
		s := &SGE{}
		r.c.Executors.SGE = s
		const where = "executors: sge: "
		if sf := r.fields(where, kv[1], sgeKeys, nil); sf != nil {
			r.strField(sf, where, "queue", "executors.sge.queue", &s.Queue)
			r.strField(sf, where, "cell", "executors.sge.cell", &s.Cell)
			r.strField(sf, where, "root", "executors.sge.root", &s.Root)
		}
	}
}
