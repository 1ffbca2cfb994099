package schedule

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxDepth bounds nesting (and recursive aliases such as `a: &x [*x]`,
// which the YAML parser accepts) when values are converted to Go values.
const maxDepth = 64

// maxNodes bounds how many nodes aliases may expand to in one file (beyond
// its size in bytes), so a
// "billion laughs" document is an error rather than an out-of-memory.
const maxNodes = 1 << 20

// file is one schedule file being read.
type file struct {
	name  string
	src   []byte
	lines []string // split on demand, for trigger error columns
	nodes int      // nodes converted so far, against maxNodes
	// open holds the collections being converted or merged, to catch
	// aliases that refer to their own ancestors.
	open map[*yaml.Node]bool
}

// enter marks n as being expanded; it reports false, with an error, when n
// is already open: an alias inside n refers back to n.
func (s scope) enter(n *yaml.Node, at *yaml.Node) bool {
	if s.f.open == nil {
		s.f.open = map[*yaml.Node]bool{}
	}
	if s.f.open[n] {
		s.errf(at, "", "alias refers to a value that contains it")
		return false
	}
	s.f.open[n] = true
	return true
}

func (s scope) leave(n *yaml.Node) { delete(s.f.open, n) }

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parseDocs parses every YAML document of f. A syntax error ends the file:
// the parser cannot resynchronise after one.
func parseDocs(f *file) (docs []*yaml.Node, e *Error) {
	defer func() {
		// yaml.v3 has panicked on malformed input in the past; an error
		// at line 1 beats crashing `talon validate`.
		if r := recover(); r != nil {
			e = &Error{Pos: Pos{File: f.name, Line: 1, Col: 1}, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(f.src))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return docs, SyntaxError(f.name, f.src, err)
		}
		docs = append(docs, &n)
	}
}

// SyntaxError positions a YAML syntax error err found in src, the
// contents of file name. yaml.v3 reports the line where the construct
// around the problem began, counted from 0 for some errors and from 1 for
// others, or no line at all, and never a column; so the line is found
// again here: it is the last line of the shortest run of whole lines from
// the start of src that fails with the same error (an unclosed bracket
// fails on its own line, a bad indentation on the line that has it). The
// column is the line's first character after its indentation.
func SyntaxError(name string, src []byte, err error) *Error {
	msg, from := err.Error(), 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		from, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	line, text := syntaxLine(src, err.Error(), from)
	col := 1 // indentation is spaces only, one byte each
	if indent := len(text) - len(strings.TrimLeft(text, " ")); indent < len(text) {
		col += indent
	}
	return &Error{Pos: Pos{File: name, Line: line, Col: col}, Msg: "invalid YAML: " + msg}
}

// syntaxLine returns the line (1-based), and its text, that ends the
// shortest prefix of src failing with the error text want, looking from
// line from on. Once a prefix holds the problem, every longer one fails
// the same way (the parser stops there), and a shorter one cut inside an
// earlier bracket fails with another context line in the text; so a
// binary search finds the line in a few parses, even in a large file.
func syntaxLine(src []byte, want string, from int) (int, string) {
	var ends []int // ends[i] is the offset just past line i+1
	for i, b := range src {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(src) {
		ends = append(ends, len(src))
	}
	// lo fails otherwise (or is before the file), hi fails with want: the
	// whole file does.
	lo, hi := min(max(from, 1), len(ends))-1, len(ends)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if parsePrefix(src[:ends[mid-1]]) == want {
			hi = mid
		} else {
			lo = mid
		}
	}
	start := 0
	if hi >= 2 {
		start = ends[hi-2]
	}
	return hi, strings.TrimRight(string(src[start:ends[hi-1]]), "\r\n")
}

// parsePrefix is firstError for syntaxLine's search; a test counts its
// calls.
var parsePrefix = firstError

// firstError parses every document of src and returns the text of the
// first error, "" when there is none.
func firstError(src []byte) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return ""
		}
		if err != nil {
			return err.Error()
		}
	}
}

// deref follows an alias to the node it names.
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

// scope reports errors for one part of a schedule, prefixing messages with
// where they are ("job \"load\": retries: ").
type scope struct {
	l *loader
	f *file
	// job, when not "", is the job whose settings these are: where
	// begins with `job "NAME": `, written only for an error.
	job   string
	where string
	// key is the last part of where, kept apart until a deeper sub or an
	// error needs it: most scopes never report anything, and a hundred
	// thousand jobs made millions of prefixes for nothing.
	key string
}

func (s scope) sub(key string) scope {
	if s.key != "" {
		s.where += s.key + ": "
	}
	s.key = key
	return s
}

func (s scope) pos(n *yaml.Node) Pos {
	p := Pos{File: s.f.name, Line: 1, Col: 1}
	if n != nil && n.Line >= 1 {
		p.Line, p.Col = n.Line, max(n.Column, 1)
	}
	return p
}

// maxErrors bounds the list: past it the schedule is clearly not one
// edit away from valid, and a huge list only hides the first errors.
const maxErrors = 1000

func (s scope) errAt(p Pos, hint, format string, args ...any) {
	where := s.where
	if s.job != "" {
		where = "job " + quote(s.job) + ": " + where
	}
	if s.key != "" {
		where += s.key + ": "
	}
	s.l.add(&Error{Pos: p, Msg: where + fmt.Sprintf(format, args...), Hint: hint})
}

func (s scope) errf(n *yaml.Node, hint, format string, args ...any) {
	s.errAt(s.pos(n), hint, format, args...)
}

// pair is one key and its value in a mapping.
type pair struct {
	name string
	key  *yaml.Node
	val  *yaml.Node
}

// pairs lists a mapping's entries in order, expanding merge keys (<<) the
// way YAML 1.1 does: keys written in the mapping win over merged ones. A
// repeated key is an error, since the YAML parser keeps both silently.
func (s scope) pairs(n *yaml.Node) []pair {
	return s.pairsDepth(n, 0)
}

func (s scope) pairsDepth(n *yaml.Node, depth int) []pair {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	if depth > maxDepth {
		s.errf(n, "", "nested more than %d levels deep (or a recursive alias)", maxDepth)
		return nil
	}
	// Merges can expand like aliases (`<<: [*a, *a]` at every level).
	if !s.spend(n, len(n.Content)/2) || !s.enter(n, n) {
		return nil
	}
	defer s.leave(n)
	var merged []pair
	out := make([]pair, 0, len(n.Content)/2)
	seen := newKeySet(len(n.Content) / 2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		dk := deref(k)
		if dk.Kind == yaml.ScalarNode && dk.ShortTag() == "!!merge" {
			merged = append(merged, s.mergeSources(v, depth)...)
			continue
		}
		if p, ok := s.keyPair(&seen, out, k, v); ok {
			out = append(out, p)
		}
	}
	for _, p := range merged {
		if seen.first(out, p.name) != nil {
			continue
		}
		seen.add(out, p)
		out = append(out, p)
	}
	return out
}

// keyPair checks key k of a mapping whose entries so far are out: a
// name, not seen before (else the error says where it was first). Merge
// keys are the caller's business.
func (s scope) keyPair(seen *keySet, out []pair, k, v *yaml.Node) (pair, bool) {
	dk := deref(k)
	if dk.Kind != yaml.ScalarNode {
		s.errf(k, "", "want a name as key, not a %s", kindName(dk))
		return pair{}, false
	}
	if first := seen.first(out, dk.Value); first != nil {
		s.errf(k, "", "key %s repeated (first at line %d)", quote(dk.Value), first.Line)
		return pair{}, false
	}
	p := pair{name: dk.Value, key: k, val: v}
	seen.add(out, p)
	return p, true
}

// keySet finds a mapping's keys seen so far. A small mapping (a job's
// settings) is searched in its entries, without a map: with a hundred
// thousand jobs, a map per mapping is most of what the loader allocates.
// A large one (the jobs) gets a map.
type keySet struct {
	m map[string]*yaml.Node // nil: search the entries
}

// smallMapping is the most entries searched one by one.
const smallMapping = 16

func newKeySet(size int) keySet {
	if size > smallMapping {
		return keySet{m: make(map[string]*yaml.Node, size)}
	}
	return keySet{}
}

// first returns the key node of the entry named name, nil if none; out
// holds the entries so far.
func (ks *keySet) first(out []pair, name string) *yaml.Node {
	if ks.m != nil {
		return ks.m[name]
	}
	for _, p := range out {
		if p.name == name {
			return p.key
		}
	}
	return nil
}

// add records p, about to be appended to out; past smallMapping entries
// (merges can bring many) the set moves to a map.
func (ks *keySet) add(out []pair, p pair) {
	if ks.m == nil {
		if len(out) < smallMapping {
			return
		}
		ks.m = make(map[string]*yaml.Node, 2*len(out))
		for _, q := range out {
			ks.m[q.name] = q.key
		}
	}
	ks.m[p.name] = p.key
}

func (s scope) mergeSources(v *yaml.Node, depth int) []pair {
	dv := deref(v)
	switch dv.Kind {
	case yaml.MappingNode:
		return s.pairsDepth(dv, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, it := range dv.Content {
			if deref(it).Kind != yaml.MappingNode {
				s.errf(it, "", "<<: want a mapping or a list of mappings to merge")
				continue
			}
			out = append(out, s.pairsDepth(it, depth+1)...)
		}
		return out
	}
	s.errf(v, "", "<<: want a mapping or a list of mappings to merge")
	return nil
}

// fields checks a mapping against its known keys, reporting unknown ones
// with the nearest known key as a hint, and returns the entries by key.
// Entries with a null value are left out: `env:` with nothing after it is
// the same as no env at all.
func (s scope) fields(n *yaml.Node, known []string, what string) fieldSet {
	dn := deref(n)
	if dn == nil || dn.Kind != yaml.MappingNode {
		s.errf(n, "", "want a mapping of %s, not a %s", what, kindName(dn))
		return nil
	}
	pairs := s.pairs(dn)
	out := fieldSet(pairs[:0:len(pairs)]) // pairs is ours to filter; not nil
	if out == nil {
		out = fieldSet{}
	}
	for _, p := range pairs {
		if !contains(known, p.name) {
			s.errf(p.key, didYouMean(p.name, known), "unknown key %s", quote(p.name))
			continue
		}
		if isNull(p.val) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// fieldSet is a mapping's entries with known keys and non-null values;
// nil when the node was not a mapping. A slice, not a map: a job has a
// dozen keys at most, and a schedule can have a hundred thousand jobs.
type fieldSet []pair

// get returns the entry for key name.
func (fs fieldSet) get(name string) (pair, bool) {
	for _, p := range fs {
		if p.name == name {
			return p, true
		}
	}
	return pair{}, false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return "scalar"
	case yaml.DocumentNode:
		return "document"
	}
	return "alias"
}

// str reads a scalar as text. Numbers and booleans are accepted as written
// (`env: {N: 1}` sets N to "1").
func (s scope) str(n *yaml.Node) (string, bool) {
	dn := deref(n)
	if dn.Kind != yaml.ScalarNode || dn.ShortTag() == "!!null" {
		s.errf(n, "", "want a string, not a %s", kindName(dn))
		return "", false
	}
	return dn.Value, true
}

// strs reads a list of scalars.
func (s scope) strs(n *yaml.Node, want string) ([]string, bool) {
	dn := deref(n)
	if dn.Kind != yaml.SequenceNode {
		s.errf(n, "", "want %s, not a %s", want, kindName(dn))
		return nil, false
	}
	out := make([]string, 0, len(dn.Content))
	ok := true
	for _, it := range dn.Content {
		d := deref(it)
		if d.Kind != yaml.ScalarNode || d.ShortTag() == "!!null" {
			s.errf(it, "", "want %s, found a %s in it", want, kindName(d))
			ok = false
			continue
		}
		out = append(out, d.Value)
	}
	return out, ok
}

// decodeInt is dn.Decode(&v) for an !!int scalar, without the decoder
// the YAML package sets up for each call when the value is plainly
// decimal.
func decodeInt(dn *yaml.Node, v *int) error {
	if i, ok := plainDecimal(dn.Value); ok {
		*v = i
		return nil
	}
	return dn.Decode(v)
}

// plainDecimal reads an optional '-' and up to 9 digits without a leading
// zero: text every YAML reading takes for the same number (the parser
// reads "012" as octal, and allows '_' and other bases).
func plainDecimal(v string) (int, bool) {
	digits := strings.TrimPrefix(v, "-")
	if len(digits) == 0 || len(digits) > 9 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if len(digits) < len(v) {
		n = -n
	}
	return n, true
}

// decodeBool is dn.Decode(&v) for a !!bool scalar, short-cut for the
// spellings JSON has.
func decodeBool(dn *yaml.Node, v *bool) error {
	switch dn.Value {
	case "true":
		*v = true
		return nil
	case "false":
		*v = false
		return nil
	}
	return dn.Decode(v)
}

func (s scope) integer(n *yaml.Node, want string) (int, bool) {
	dn := deref(n)
	var v int
	if dn.Kind != yaml.ScalarNode || dn.ShortTag() != "!!int" || decodeInt(dn, &v) != nil {
		s.errf(n, "", "want %s, not %s", want, shown(dn))
		return 0, false
	}
	return v, true
}

func (s scope) boolean(n *yaml.Node) (bool, bool) {
	dn := deref(n)
	var v bool
	if dn.Kind != yaml.ScalarNode || dn.ShortTag() != "!!bool" || decodeBool(dn, &v) != nil {
		s.errf(n, "", "want true or false, not %s", shown(dn))
		return false, false
	}
	return v, true
}

// parseDuration reads a Go duration ("90s", "1h30m") or a whole number
// of days ("2d"), which Go's syntax lacks but catch-up windows want.
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad number of days %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	if v == "0" {
		return 0, nil
	}
	return time.ParseDuration(v)
}

// shown renders a node for an error message: a scalar as quoted text,
// anything else by its kind.
func shown(n *yaml.Node) string {
	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		return quote(n.Value)
	}
	return "a " + kindName(n)
}

// value converts a node to plain Go values (string, bool, int, float64,
// nil, []any, map[string]any): what constraint factories and TALON_PARAMS
// expect. Timestamps and other tags stay text as written, so a date in
// params reaches the job unchanged.
func (s scope) value(n *yaml.Node, depth int) (any, bool) {
	if !s.spend(n, 1) {
		return nil, false
	}
	if depth > maxDepth {
		s.errf(n, "", "nested more than %d levels deep (or a recursive alias)", maxDepth)
		return nil, false
	}
	dn := deref(n)
	if dn.Kind == yaml.SequenceNode || dn.Kind == yaml.MappingNode {
		if !s.enter(dn, n) {
			return nil, false
		}
		defer s.leave(dn)
	}
	switch dn.Kind {
	case yaml.ScalarNode:
		switch dn.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := decodeBool(dn, &b); err != nil {
				s.errf(n, "", "want true or false, not %s", quote(dn.Value))
				return nil, false
			}
			return b, true
		case "!!int":
			var i int
			if err := decodeInt(dn, &i); err != nil {
				s.errf(n, "", "integer %s out of range", quote(dn.Value))
				return nil, false
			}
			return i, true
		case "!!float":
			var f float64
			if err := dn.Decode(&f); err != nil {
				s.errf(n, "", "want a number, not %s", quote(dn.Value))
				return nil, false
			}
			return f, true
		}
		return dn.Value, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(dn.Content))
		ok := true
		for _, it := range dn.Content {
			v, itOK := s.value(it, depth+1)
			ok = ok && itOK
			out = append(out, v)
		}
		return out, ok
	case yaml.MappingNode:
		out := map[string]any{}
		ok := true
		// pairsDepth opens dn itself for its merge keys.
		s.leave(dn)
		pairs := s.pairsDepth(dn, depth)
		s.f.open[dn] = true
		for _, p := range pairs {
			v, itOK := s.value(p.val, depth+1)
			ok = ok && itOK
			out[p.name] = v
		}
		return out, ok
	}
	s.errf(n, "", "want a value, not a %s", kindName(dn))
	return nil, false
}

// spend counts k more values expanded in this file and reports, once,
// when the file passes maxNodes.
func (s scope) spend(n *yaml.Node, k int) bool {
	// A file without aliases has fewer values than bytes, so a large
	// schedule is never refused; only expansion beyond that counts.
	limit := maxNodes + len(s.f.src)
	if s.f.nodes > limit {
		return false
	}
	s.f.nodes += k
	if s.f.nodes > limit {
		s.errf(n, "", "too large: aliases expand to more than %d values", limit)
		return false
	}
	return true
}

// offsetPos is the position of byte offset off inside scalar n's value,
// when the value is written on one line exactly as it reads (plain, or
// quoted without escapes); otherwise it is the scalar's own position,
// which is still the right line.
func (s scope) offsetPos(n *yaml.Node, off int) Pos {
	p := s.pos(n)
	if n == nil || n.Kind != yaml.ScalarNode || off < 0 || off > len(n.Value) || strings.ContainsAny(n.Value, "\r\n") {
		return p
	}
	quote := 0
	switch n.Style {
	case 0:
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		quote = 1
	default:
		return p
	}
	if s.f.lines == nil {
		s.f.lines = strings.Split(string(s.f.src), "\n")
	}
	if n.Line < 1 || n.Line > len(s.f.lines) || n.Column < 1 {
		return p
	}
	line := []rune(s.f.lines[n.Line-1])
	start := n.Column - 1 + quote
	val := []rune(n.Value)
	if start+len(val) > len(line) || string(line[start:start+len(val)]) != n.Value {
		return p
	}
	p.Col = n.Column + quote + utf8.RuneCountInString(n.Value[:off])
	return p
}
