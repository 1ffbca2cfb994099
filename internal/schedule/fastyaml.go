package schedule

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// fastParse reads a piece of the jobs: section (see chunks.go) written in
// a narrow, common subset of YAML, building the same nodes the YAML
// parser would, in a fraction of its time: that parser spends most of a
// large schedule's load in its general machinery. The subset is one
// line per entry: block mappings nested by indentation, whose keys are
// plain names ([A-Za-z0-9_][A-Za-z0-9_./-]*), and values written on the
// key's line: a plain scalar of ordinary characters, a quoted one without
// escapes, or a flow list or mapping of those. Anything else (block
// lists, multi-line values, comments after a value, tabs, non-ASCII
// text, anchors, tags) makes it return nil, and the piece goes to the
// YAML parser; FuzzFastParse checks that whatever it accepts, it reads as
// that parser does. Comments on their own lines are skipped: the loader
// never reads comments.
//
// Its nodes come from a, which the caller resets once the piece is read:
// whatever outlives the piece must be copied out of it (see keep).
func fastParse(src []byte, firstLine, indent int, a *arena) *yaml.Node {
	a.tmp = a.tmp[:0]
	if a.strs == nil || len(a.strs) > 1<<12 {
		a.strs = map[string]string{}
	}
	p := &fastParser{src: src, line: firstLine, a: a}
	p.nextLine()
	if p.eof || p.indent != indent {
		return nil
	}
	root := p.mapping(indent, true)
	if root == nil || !p.eof {
		return nil
	}
	return root
}

type fastParser struct {
	src    []byte
	off    int    // start of the next line
	text   []byte // the current line, without its newline
	line   int    // the current line's number
	indent int    // the current line's indentation
	eof    bool
	a      *arena
}

// arena holds the nodes of one piece at a time. A hundred thousand jobs
// are millions of nodes, each read once and dropped; allocating them
// anew was most of the load's garbage, and its collection most of its
// time.
type arena struct {
	nodes [][]yaml.Node // blocks of arenaBlock nodes
	bi    int           // block in use
	ni    int           // next free node in it
	ptrs  [][]*yaml.Node
	pbi   int
	pni   int
	tmp   []*yaml.Node      // children being read, a stack across levels
	strs  map[string]string // one copy of each short string
}

const arenaBlock = 4096

// poisonArena makes reset overwrite the nodes it frees, so that a test
// finds any kept past its piece.
var poisonArena = false

func (a *arena) node() *yaml.Node {
	if a.ni == arenaBlock {
		a.bi, a.ni = a.bi+1, 0
	}
	if a.bi == len(a.nodes) {
		a.nodes = append(a.nodes, make([]yaml.Node, arenaBlock))
	}
	n := &a.nodes[a.bi][a.ni]
	a.ni++
	return n
}

// content copies kids into the arena, as a slice that cannot grow into
// its neighbours.
func (a *arena) content(kids []*yaml.Node) []*yaml.Node {
	k := len(kids)
	if k == 0 {
		return nil
	}
	if k > arenaBlock {
		return append([]*yaml.Node(nil), kids...)
	}
	if a.pni+k > arenaBlock {
		a.pbi, a.pni = a.pbi+1, 0
	}
	if a.pbi == len(a.ptrs) {
		a.ptrs = append(a.ptrs, make([]*yaml.Node, arenaBlock))
	}
	out := a.ptrs[a.pbi][a.pni : a.pni+k : a.pni+k]
	copy(out, kids)
	a.pni += k
	return out
}

// reset frees every node for the next piece.
func (a *arena) reset() {
	if poisonArena {
		for b := 0; b <= a.bi && b < len(a.nodes); b++ {
			for i := range a.nodes[b] {
				a.nodes[b][i] = yaml.Node{Kind: yaml.ScalarNode, Value: "\x00freed", Line: -1, Column: -1}
			}
		}
	}
	a.bi, a.ni, a.pbi, a.pni = 0, 0, 0, 0
}

// mark is what a draft keeps of a node it may report an error at once
// the whole schedule is read: its position, and what offsetPos needs to
// point inside a trigger. A hundred thousand jobs keep two each.
type mark struct {
	value     string
	line, col int32
	kind      yaml.Kind
	style     yaml.Style
}

func markOf(n *yaml.Node) mark {
	return mark{value: n.Value, line: int32(n.Line), col: int32(n.Column), kind: n.Kind, style: n.Style}
}

// node rebuilds the node, for an error.
func (m mark) node() *yaml.Node {
	return &yaml.Node{Kind: m.kind, Style: m.style, Value: m.value, Line: int(m.line), Column: int(m.col)}
}

// keep returns a copy of n, outside any arena, for a draft to hold after
// its piece is read: what positions and trigger errors need (kind,
// style, tag, value, line and column), without children.
func keep(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	return &yaml.Node{Kind: n.Kind, Style: n.Style, Tag: n.Tag, Value: n.Value, Line: n.Line, Column: n.Column}
}

// nextLine moves to the next line that is not blank or a comment.
func (p *fastParser) nextLine() {
	first := p.text == nil
	for {
		if p.off >= len(p.src) {
			p.eof, p.text = true, []byte{}
			return
		}
		if !first {
			p.line++
		}
		first = false
		end := p.off
		for end < len(p.src) && p.src[end] != '\n' {
			end++
		}
		p.text = p.src[p.off:end]
		p.off = end + 1
		if !p.lineOK() {
			// Stop here: mapping sees a line it cannot read.
			p.indent = 0
			return
		}
		p.indent = 0
		for p.indent < len(p.text) && p.text[p.indent] == ' ' {
			p.indent++
		}
		if p.indent < len(p.text) && p.text[p.indent] != '#' {
			return
		}
		// Blank or a comment (a line with only spaces and '#…').
	}
}

// mapping reads a block mapping whose keys are indented by indent,
// starting at the current line.
func (p *fastParser) mapping(indent int, root bool) *yaml.Node {
	m := p.a.node()
	*m = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: p.line, Column: indent + 1}
	start := len(p.a.tmp)
	for !p.eof && p.indent >= indent {
		if p.indent != indent || !p.lineOK() || p.text[p.indent] == '#' {
			return nil
		}
		pos := indent
		key, pos := p.name(pos, !root)
		if key == nil || pos >= len(p.text) || p.text[pos] != ':' {
			return nil
		}
		pos++
		if pos == len(p.text) {
			// The value is a mapping on the lines below.
			p.nextLine()
			if p.eof || p.indent <= indent {
				return nil // a null value: left to the YAML parser
			}
			v := p.mapping(p.indent, false)
			if v == nil {
				return nil
			}
			p.a.tmp = append(p.a.tmp, key, v)
			continue
		}
		if p.text[pos] != ' ' {
			return nil
		}
		for pos < len(p.text) && p.text[pos] == ' ' {
			pos++
		}
		if pos == len(p.text) {
			return nil // trailing spaces; left to the YAML parser
		}
		v, pos := p.value(pos, false)
		if v == nil {
			return nil
		}
		for pos < len(p.text) && p.text[pos] == ' ' {
			pos++
		}
		if pos != len(p.text) {
			return nil
		}
		p.a.tmp = append(p.a.tmp, key, v)
		p.nextLine()
	}
	m.Content = p.a.content(p.a.tmp[start:])
	p.a.tmp = p.a.tmp[:start]
	return m
}

// maxFastLine bounds the lines fastParse reads: the YAML parser refuses
// a key more than 1,024 characters after the start of its line.
const maxFastLine = 512

// lineOK accepts short lines of printable ASCII only.
func (p *fastParser) lineOK() bool {
	if len(p.text) > maxFastLine {
		return false
	}
	for _, c := range p.text {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func (p *fastParser) str(b []byte) string {
	if s, ok := p.a.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) <= 32 {
		p.a.strs[s] = s
	}
	return s
}

func (p *fastParser) scalar(b []byte, style yaml.Style, at int) *yaml.Node {
	n := p.a.node()
	*n = yaml.Node{Kind: yaml.ScalarNode, Style: style, Value: p.str(b), Line: p.line, Column: at + 1}
	if style == 0 && len(b) > 0 && !resolveHint(b[0]) {
		n.Tag = "!!str" // what the parser's resolve says without looking further
	} else {
		n.Tag = n.ShortTag() // as the parser resolves it
	}
	return n
}

// resolveHint reports whether a plain scalar starting with c may be other
// than a string (a number, a boolean, null, a timestamp, a merge key):
// the YAML parser reads every other one as a string at once.
func resolveHint(c byte) bool {
	return c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c == '<' ||
		strings.IndexByte("yYnNtTfFoO~", c) >= 0
}

func isNameByte(c byte) bool {
	return isNameStart(c) || c == '.' || c == '-' || c == '/'
}

// name reads a plain key at pos; share says it is worth sharing (not a
// job's name, which no other key repeats).
func (p *fastParser) name(pos int, share bool) (*yaml.Node, int) {
	if pos >= len(p.text) || !isNameStart(p.text[pos]) {
		return nil, pos
	}
	end := pos + 1
	for end < len(p.text) && isNameByte(p.text[end]) {
		end++
	}
	if !share {
		n := p.a.node()
		*n = yaml.Node{Kind: yaml.ScalarNode, Value: string(p.text[pos:end]), Line: p.line, Column: pos + 1}
		n.Tag = n.ShortTag()
		return n, end
	}
	return p.scalar(p.text[pos:end], 0, pos), end
}

// value reads a value at pos: a flow list or mapping, a quoted or a
// plain scalar; flow says it is inside a flow collection.
func (p *fastParser) value(pos int, flow bool) (*yaml.Node, int) {
	t := p.text
	switch c := t[pos]; c {
	case '[', '{':
		kind, tag, end := yaml.SequenceNode, "!!seq", byte(']')
		if c == '{' {
			kind, tag, end = yaml.MappingNode, "!!map", '}'
		}
		n := p.a.node()
		*n = yaml.Node{Kind: kind, Style: yaml.FlowStyle, Tag: tag, Line: p.line, Column: pos + 1}
		pos = skipSpaces(t, pos+1)
		if pos < len(t) && t[pos] == end {
			return n, pos + 1
		}
		start := len(p.a.tmp)
		for pos < len(t) {
			if kind == yaml.MappingNode {
				var k *yaml.Node
				k, pos = p.name(pos, true)
				if k == nil || pos+1 >= len(t) || t[pos] != ':' || t[pos+1] != ' ' {
					return nil, pos
				}
				p.a.tmp = append(p.a.tmp, k)
				pos = skipSpaces(t, pos+1)
			}
			if pos >= len(t) {
				return nil, pos
			}
			var v *yaml.Node
			v, pos = p.value(pos, true)
			if v == nil {
				return nil, pos
			}
			p.a.tmp = append(p.a.tmp, v)
			pos = skipSpaces(t, pos)
			if pos >= len(t) {
				return nil, pos
			}
			if t[pos] == end {
				n.Content = p.a.content(p.a.tmp[start:])
				p.a.tmp = p.a.tmp[:start]
				return n, pos + 1
			}
			if t[pos] != ',' {
				return nil, pos
			}
			pos = skipSpaces(t, pos+1)
			if pos < len(t) && (t[pos] == end || t[pos] == ',') {
				return nil, pos // an empty entry
			}
		}
		return nil, pos
	case '"', '\'':
		end := pos + 1
		for end < len(t) && t[end] != c && t[end] != '\\' {
			end++
		}
		if end >= len(t) || t[end] != c || (end+1 < len(t) && t[end+1] == c) {
			return nil, pos // escapes, '' in single quotes, or no end
		}
		style := yaml.DoubleQuotedStyle
		if c == '\'' {
			style = yaml.SingleQuotedStyle
		}
		return p.scalar(t[pos+1:end], style, pos), end + 1
	}
	if !plainStart(t, pos) {
		return nil, pos
	}
	end, last := pos, pos // last: just past the last non-space
	for end < len(t) {
		c := t[end]
		switch {
		case c == ' ':
		case c == ':':
			// "07:00" is plain text; ": " or a ':' at the end starts a
			// mapping, and in a flow collection ':' is left alone.
			if flow || end+1 >= len(t) || !plainByte(t[end+1]) {
				return nil, pos
			}
		case flow && (c == ',' || c == ']' || c == '}'):
			return p.scalar(t[pos:last], 0, pos), last
		case flow && c == '?':
			return nil, pos // the YAML parser stops a flow plain scalar there
		case !plainByte(c):
			return nil, pos
		}
		end++
		if c != ' ' {
			last = end
		}
	}
	if flow {
		return nil, pos // a flow collection ends on its line
	}
	return p.scalar(t[pos:last], 0, pos), last
}

// plainStart reports whether a plain scalar may start at pos: not with an
// indicator, and '-' only before text ("--day", "-1").
func plainStart(t []byte, pos int) bool {
	c := t[pos]
	if isNameStart(c) || c == '.' || c == '/' || c == '~' || c == '+' {
		return true
	}
	return c == '-' && pos+1 < len(t) && (isNameByte(t[pos+1]) || t[pos+1] == '.')
}

// plainByte is the characters a plain scalar may hold after its first:
// never '#', quotes, backslashes or flow indicators, even where YAML
// would allow them.
func plainByte(c byte) bool {
	if isNameByte(c) {
		return true
	}
	switch c {
	case '~', '+', '$', '(', ')', '=', '^', '*', '&', '!', '?', '|', '<', '>', '%', '@', ';', ':':
		return true
	}
	return false
}

func skipSpaces(t []byte, pos int) int {
	for pos < len(t) && t[pos] == ' ' {
		pos++
	}
	return pos
}
