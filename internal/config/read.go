package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/suggest"
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
func (r *reader) fields(where string, n *yaml.Node, known []string, ignore func(key *yaml.Node) bool) map[string][2]*yaml.Node {
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
			r.errf(k, "", "%skey %s repeated (first at line %d)", where, suggest.Quote(k.Value), line)
			continue
		}
		seen[k.Value] = k.Line
		if ignore != nil && ignore(k) {
			continue
		}
		if !contains(known, k.Value) {
			r.errf(k, didYouMean(k.Value, known, ""), "%sunknown key %s", where, suggest.Quote(k.Value))
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
	fs := r.fields("", n, topKeys, func(k *yaml.Node) bool {
		if contains(scheduleKeys, k.Value) {
			c.HasSchedule = true
			return true
		}
		if why, ok := notYet[k.Value]; ok {
			r.errf(k, why[1], "%s", why[0])
			return true
		}
		// Extension keys hold anchors, as in the schedule.
		return strings.HasPrefix(k.Value, "x-")
	})
	if fs == nil {
		return
	}
	r.strField(fs, "", "state", "state", &c.State)
	r.strField(fs, "", "schedule", "schedule", &c.Schedule)
	r.strField(fs, "", "listen", "listen", &c.Listen)
	r.strField(fs, "", "advertise_url", "advertise_url", &c.AdvertiseURL)
	r.strField(fs, "", "logs", "logs", &c.Logs)
	if kv, ok := fs["lease"]; ok {
		r.lease(kv[1])
	}
	if kv, ok := fs["tls"]; ok {
		r.tls(kv[1])
	}
	if kv, ok := fs["auth"]; ok {
		r.auth(kv[1])
	}
	if kv, ok := fs["insecure"]; ok {
		n := deref(kv[1])
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			r.errf(kv[1], "", "insecure: want true or false, not %s", suggest.Quote(n.Value))
		}
		c.Insecure = b
	}
}

func (r *reader) tls(n *yaml.Node) {
	fs := r.fields("tls: ", n, []string{"cert", "key", "ca"}, nil)
	if fs == nil {
		return
	}
	t := &TLS{}
	r.strField(fs, "tls: ", "cert", "tls.cert", &t.Cert)
	r.strField(fs, "tls: ", "key", "tls.key", &t.Key)
	r.strField(fs, "tls: ", "ca", "tls.ca", &t.CA)
	r.record("tls", n, "")
	r.c.TLS = t
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
		r.errf(n, "", "lease: want a duration like 30s, not %s", suggest.Quote(n.Value))
	case d < minLease || d > maxLease:
		r.errf(n, "", "lease: want between %s and %s, not %s", minLease, maxLease, d)
	default:
		r.c.Lease = d
	}
}
