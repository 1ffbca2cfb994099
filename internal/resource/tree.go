package resource

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
)

// AgentNamespace is the namespace remote agents (talon agent) register
// under: the agent named NAME is the node hosts/agents/NAME, with its
// slots as capacity and its labels as attributes. Its nodes come and go
// with their agents, so a schedule may not declare any, and requests for
// them are checked when a run allocates, not when the schedule loads.
const AgentNamespace = "hosts/agents"

// IsAgentPath reports whether a request path or pattern is within
// AgentNamespace.
func IsAgentPath(p string) bool {
	return p == AgentNamespace || strings.HasPrefix(p, AgentNamespace+"/")
}

// Node is one declared resource.
type Node struct {
	Path       string            `json:"path"`
	Capacity   int               `json:"capacity"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Per, when set, makes the node consumable per period of that type.
	Per talon.PeriodType `json:"per,omitempty"`
}

// PeriodKey is the key of the period a consumable node's units are
// counted in at now (UTC calendar), or "" for a node whose units return
// when their holder ends.
func (n *Node) PeriodKey(now time.Time) string {
	if n.Per == "" {
		return ""
	}
	return talon.Period{Type: n.Per, Start: now.UTC()}.Key()
}

// Tree is a set of declared nodes. It is safe for concurrent use; the
// candidates of each pattern are computed once.
type Tree struct {
	nodes map[string]*Node
	paths []string // sorted

	mu      sync.Mutex
	cands   map[string][]*Node // pattern → nodes
	matches map[string][]*Node // request key (pattern and where) → nodes
	overlap map[[2]string]bool // two request keys → share a node
}

// NewTree builds a tree from declared nodes. A later node with the same
// path replaces an earlier one.
func NewTree(nodes []Node) *Tree {
	t := &Tree{nodes: make(map[string]*Node, len(nodes)), cands: map[string][]*Node{},
		matches: map[string][]*Node{}, overlap: map[[2]string]bool{}}
	for _, n := range nodes {
		n := n
		if _, ok := t.nodes[n.Path]; !ok {
			t.paths = append(t.paths, n.Path)
		}
		t.nodes[n.Path] = &n
	}
	sort.Strings(t.paths)
	return t
}

// Node returns the declared node at p.
func (t *Tree) Node(p string) (*Node, bool) {
	if t == nil {
		return nil, false
	}
	n, ok := t.nodes[p]
	return n, ok
}

// Nodes returns every declared node in path order.
func (t *Tree) Nodes() []*Node {
	if t == nil {
		return nil
	}
	out := make([]*Node, len(t.paths))
	for i, p := range t.paths {
		out[i] = t.nodes[p]
	}
	return out
}

// Len is the number of declared nodes.
func (t *Tree) Len() int {
	if t == nil {
		return 0
	}
	return len(t.paths)
}

// PeriodKeys lists the distinct current period keys of the tree's
// consumable nodes at now: the only consumable holds that count.
func (t *Tree) PeriodKeys(now time.Time) []string {
	if t == nil {
		return nil
	}
	seen := map[talon.PeriodType]bool{}
	var out []string
	for _, p := range t.paths {
		n := t.nodes[p]
		if n.Per != "" && !seen[n.Per] {
			seen[n.Per] = true
			out = append(out, n.PeriodKey(now))
		}
	}
	sort.Strings(out)
	return out
}

// Candidates returns the declared nodes a request path may be served
// from, in path order (see the package doc for the forms).
func (t *Tree) Candidates(pattern string) []*Node {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	c, ok := t.cands[pattern]
	t.mu.Unlock()
	if ok {
		return c
	}
	c = t.candidates(pattern)
	t.mu.Lock()
	t.cands[pattern] = c
	t.mu.Unlock()
	return c
}

func (t *Tree) candidates(pattern string) []*Node {
	if n, ok := t.nodes[pattern]; ok {
		return []*Node{n}
	}
	var out []*Node
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok || !strings.ContainsAny(pattern, "*?[") {
		if !ok {
			prefix = pattern
		}
		// Paths below prefix sort right after "prefix/".
		i := sort.SearchStrings(t.paths, prefix+"/")
		for ; i < len(t.paths) && strings.HasPrefix(t.paths[i], prefix+"/"); i++ {
			out = append(out, t.nodes[t.paths[i]])
		}
		return out
	}
	segs := strings.Count(pattern, "/")
	for _, p := range t.paths {
		if strings.Count(p, "/") != segs {
			continue
		}
		if ok, _ := path.Match(pattern, p); ok {
			out = append(out, t.nodes[p])
		}
	}
	return out
}

// Request is what a job asks for: Count units of one path.
type Request struct {
	Path  string   `json:"path"`
	Count int      `json:"count"`
	Where []Filter `json:"where,omitempty"`
}

// EnvironmentVar is replaced in request paths by the run's environment.
const EnvironmentVar = "{{environment}}"

// Resolve returns r with {{environment}} replaced by env.
func (r Request) Resolve(env string) Request {
	if strings.Contains(r.Path, EnvironmentVar) {
		r.Path = strings.ReplaceAll(r.Path, EnvironmentVar, env)
	}
	return r
}

// String reads like the schedule: "hosts/linux/* where cores>=16".
func (r Request) String() string {
	if len(r.Where) == 0 {
		return r.Path
	}
	parts := make([]string, len(r.Where))
	for i, f := range r.Where {
		parts[i] = f.String()
	}
	return r.Path + " where " + strings.Join(parts, ", ")
}

// Matches reports whether node n passes every filter of r.
func (r Request) Matches(n *Node) bool {
	for _, f := range r.Where {
		if !f.Match(n.Attributes) {
			return false
		}
	}
	return true
}

// Candidates returns the nodes of t that may serve r, in path order.
// The answer is computed once per tree and must not be modified.
func (r Request) Candidates(t *Tree) []*Node {
	all := t.Candidates(r.Path)
	if len(r.Where) == 0 || t == nil {
		return all
	}
	key := r.String()
	t.mu.Lock()
	out, ok := t.matches[key]
	t.mu.Unlock()
	if ok {
		return out
	}
	for _, n := range all {
		if r.Matches(n) {
			out = append(out, n)
		}
	}
	t.mu.Lock()
	t.matches[key] = out
	t.mu.Unlock()
	return out
}

// Overlaps reports whether some node of t may serve both a and b, so
// that units reserved for one can matter to the other. Computed once
// per pair and tree.
func (t *Tree) Overlaps(a, b Request) bool {
	if a.Path == b.Path && len(a.Where) == 0 && len(b.Where) == 0 {
		return true
	}
	key := [2]string{a.String(), b.String()}
	t.mu.Lock()
	v, ok := t.overlap[key]
	t.mu.Unlock()
	if ok {
		return v
	}
	ca, cb := a.Candidates(t), b.Candidates(t)
	if len(ca) > len(cb) {
		ca, cb = cb, ca
	}
	in := make(map[string]bool, len(ca))
	for _, n := range ca {
		in[n.Path] = true
	}
	for _, n := range cb {
		if in[n.Path] {
			v = true
			break
		}
	}
	t.mu.Lock()
	t.overlap[key] = v
	t.mu.Unlock()
	return v
}

// Satisfiable says why r can never be met by t, or "" if some candidate
// has the capacity. talon validate reports it.
func (r Request) Satisfiable(t *Tree) string {
	all := t.Candidates(r.Path)
	if len(all) == 0 {
		return fmt.Sprintf("no declared resource matches %q", r.Path)
	}
	cs := r.Candidates(t)
	if len(cs) == 0 {
		return fmt.Sprintf("no resource matching %q has %s", r.Path, r.String()[len(r.Path)+len(" where "):])
	}
	most := 0
	for _, n := range cs {
		most = max(most, n.Capacity)
		if n.Capacity >= r.Count {
			return ""
		}
	}
	if len(cs) == 1 && cs[0].Path == r.Path {
		return fmt.Sprintf("asks for %d of %q, which has capacity %d", r.Count, r.Path, most)
	}
	return fmt.Sprintf("asks for %d of %q, but its largest match has capacity %d", r.Count, r.Path, most)
}

// Filter is one attribute test of a request's where.
type Filter struct {
	Attr  string `json:"attr"`
	Op    string `json:"op"` // one of >= <= > < = !=
	Value string `json:"value"`
}

// ParseFilter reads the test expr for attribute attr: ">=16", "<4",
// "=gold", "!=gold" or a plain value meaning equality.
func ParseFilter(attr, expr string) (Filter, error) {
	f := Filter{Attr: attr, Op: "="}
	e := strings.TrimSpace(expr)
	for _, op := range []string{">=", "<=", "!=", ">", "<", "="} {
		if rest, ok := strings.CutPrefix(e, op); ok {
			f.Op, e = op, strings.TrimSpace(rest)
			break
		}
	}
	f.Value = e
	switch f.Op {
	case ">=", "<=", ">", "<":
		if _, err := strconv.ParseFloat(e, 64); err != nil {
			return f, fmt.Errorf("%s wants a number, not %q", f.Op, e)
		}
	}
	return f, nil
}

// String reads like the schedule: "cores>=16".
func (f Filter) String() string { return f.Attr + f.Op + f.Value }

// Match reports whether attrs pass the filter. A missing attribute fails
// every test but !=.
func (f Filter) Match(attrs map[string]string) bool {
	v, ok := attrs[f.Attr]
	if !ok {
		return f.Op == "!="
	}
	a, errA := strconv.ParseFloat(v, 64)
	b, errB := strconv.ParseFloat(f.Value, 64)
	numeric := errA == nil && errB == nil
	switch f.Op {
	case "=":
		return v == f.Value || numeric && a == b
	case "!=":
		return !(v == f.Value || numeric && a == b)
	case ">=":
		return numeric && a >= b
	case "<=":
		return numeric && a <= b
	case ">":
		return numeric && a > b
	case "<":
		return numeric && a < b
	}
	return false
}
