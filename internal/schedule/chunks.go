package schedule

import (
	"bytes"
	"io"

	"gopkg.in/yaml.v3"
)

// A large schedule is mostly its jobs: section, and the YAML parser turns
// a file into a tree of nodes before anything reads it, about 20 times
// the file's size (a 19 MB file of 100,000 jobs made a 380 MB tree). So
// a file whose jobs: section is written in the plain block style is
// parsed in pieces: the rest of the file with the section's lines
// emptied, then a few hundred jobs at a time, each piece's tree read and
// dropped before the next is parsed. The pieces must read exactly as the
// whole file does, errors and positions included; whenever that is not
// certain (a piece fails to parse, uses aliases or merge keys, the
// section is not laid out as expected, or the errors reach the list's
// bound, where which ones are kept depends on order) the file is read
// again whole, as if the pieces had never been tried.

// chunkBytes is the size of text parsed at once: large enough that a
// parser's set-up is small beside it, small enough that its tree is.
// Tests make it 1 (a piece per job), or 0 to read every file whole.
var chunkBytes = 64 << 10

// jobsSplit is a file's jobs: section cut into pieces.
type jobsSplit struct {
	rest     []byte // the file with the section's lines emptied
	jobsLine int    // line of the "jobs:" key, 1-based
	indent   int    // the job names' indentation, in spaces
	chunks   []chunk
}

// chunk is whole jobs of the section: bytes [start, end) of the file,
// starting at line line (1-based) with a job's name.
type chunk struct {
	start, end, line int
}

// splitJobs finds the first line "jobs:" (nothing after it but a
// comment) at the start of a line, and the section below it: the lines up
// to the next one starting with neither a space nor a comment. It returns
// nil when the section is not one it can cut: every line in it must be
// blank, a comment, or indented at least as much as the first job name,
// and every line indented exactly that much must start a job name with a
// letter, digit or '_' (no sequences, merge keys, quotes, anchors or
// tags there). Tabs at the start of a line are left to the whole parse.
func splitJobs(src []byte) *jobsSplit {
	if chunkBytes == 0 {
		return nil
	}
	sp := &jobsSplit{indent: -1}
	line, off := 1, 0
	blockStart := -1
	for off < len(src) {
		end := bytes.IndexByte(src[off:], '\n')
		next := len(src)
		if end >= 0 {
			next = off + end + 1
		}
		text := bytes.TrimRight(src[off:next], "\r\n")
		if blockStart < 0 {
			if isJobsLine(text) {
				if next == len(src) {
					return nil // nothing below it
				}
				sp.jobsLine, blockStart = line, next
			}
			off, line = next, line+1
			continue
		}
		// Inside the section.
		spaces := 0
		for spaces < len(text) && text[spaces] == ' ' {
			spaces++
		}
		rest := text[spaces:]
		switch {
		case len(rest) > 0 && rest[0] == '\t':
			return nil
		case len(rest) == 0 || rest[0] == '#':
			// blank or a comment: part of whatever chunk holds it
		case spaces == 0:
			return sp.finish(src, blockStart, off, line)
		case sp.indent < 0 || spaces == sp.indent:
			if !isNameStart(rest[0]) {
				return nil
			}
			sp.indent = spaces
			if n := len(sp.chunks); n == 0 || off-sp.chunks[n-1].start >= chunkBytes {
				if n > 0 {
					sp.chunks[n-1].end = off
				}
				sp.chunks = append(sp.chunks, chunk{start: off, line: line})
			}
		case spaces < sp.indent:
			return nil
		}
		off, line = next, line+1
	}
	if blockStart < 0 {
		return nil
	}
	return sp.finish(src, blockStart, len(src), line)
}

// finish ends the section at byte end of src, line endLine, and builds
// the rest of the file: the section's lines emptied, so every other line
// keeps its number.
func (sp *jobsSplit) finish(src []byte, start, end, endLine int) *jobsSplit {
	if len(sp.chunks) == 0 {
		return nil
	}
	sp.chunks[len(sp.chunks)-1].end = end
	lines := endLine - (sp.jobsLine + 1)
	sp.rest = make([]byte, 0, start+lines+len(src)-end)
	sp.rest = append(sp.rest, src[:start]...)
	sp.rest = append(sp.rest, bytes.Repeat([]byte{'\n'}, lines)...)
	sp.rest = append(sp.rest, src[end:]...)
	return sp
}

func isJobsLine(text []byte) bool {
	rest, ok := bytes.CutPrefix(text, []byte("jobs:"))
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest, " ")
	return len(rest) == 0 || (rest[0] == '#' && len(rest) < len(text)-len("jobs:"))
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// jobsKey returns the "jobs" key of the rest's documents at the line the
// split found, with its (emptied) null value; nil if there is none, as
// when the line was inside a quoted string.
func (sp *jobsSplit) jobsKey(docs []*yaml.Node) *yaml.Node {
	for _, doc := range docs {
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "jobs" && k.Line == sp.jobsLine && k.Column == 1 &&
				k.Style == 0 && k.ShortTag() == "!!str" && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" && v.Value == "" {
				return k
			}
		}
	}
	return nil
}

// parseChunk parses the jobs of c: a mapping of job names at the
// section's indentation, with positions moved to the file's lines. It
// returns nil if the text does not parse, or holds an alias or a merge
// key (their meaning may depend on other pieces).
func (sp *jobsSplit) parseChunk(src []byte, c chunk) (root *yaml.Node) {
	defer func() {
		if recover() != nil {
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src[c.start:c.end]))
	var doc, more yaml.Node
	if dec.Decode(&doc) != nil || dec.Decode(&more) != io.EOF {
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil
	}
	root = doc.Content[0]
	if root.Kind != yaml.MappingNode || root.ShortTag() != "!!map" || root.Anchor != "" ||
		root.Line != 1 || root.Column != sp.indent+1 {
		return nil
	}
	for i := 0; i < len(root.Content); i += 2 {
		if root.Content[i].ShortTag() == "!!merge" {
			return nil
		}
	}
	if !shiftLines(root, c.line-1) {
		return nil
	}
	return root
}

// shiftLines adds by to the line of n and every node below it; it
// reports false, leaving the tree half-shifted, at an alias.
func shiftLines(n *yaml.Node, by int) bool {
	if n.Kind == yaml.AliasNode {
		return false
	}
	n.Line += by
	for _, c := range n.Content {
		if !shiftLines(c, by) {
			return false
		}
	}
	return true
}

// fileInChunks reads file name, whose jobs: section sp has cut, piece by
// piece. It reports false, having undone whatever it added, when the
// file must be read whole.
func (l *loader) fileInChunks(name string, data []byte, sp *jobsSplit) bool {
	docs, perr := parseDocs(&file{name: name, src: sp.rest})
	if perr != nil {
		return false
	}
	key := sp.jobsKey(docs)
	if key == nil {
		return false
	}
	f := &file{name: name, src: data}
	top := scope{l: l, f: f}
	ok := l.docs(top, docs, key, func() bool { return l.jobsInChunks(top, data, sp) })
	if !ok {
		l.rollback(f)
	}
	return ok
}

// jobsInChunks is jobsSection for the cut section: the same checks in the
// same order, but with one piece's tree at a time.
func (l *loader) jobsInChunks(top scope, data []byte, sp *jobsSplit) bool {
	s := top.sub("jobs")
	// The lines of the names so far, across the pieces: keyPair's check,
	// without a node kept per job.
	seen := map[string]int{}
	var pairs []pair
	var a arena
	for _, c := range sp.chunks {
		a.reset() // drafts keep copies of the nodes they need (keep)
		root := fastParse(data[c.start:c.end], c.line, sp.indent, &a)
		if root == nil {
			root = sp.parseChunk(data, c)
		}
		if root == nil {
			return false
		}
		s.spend(root, len(root.Content)/2)
		pairs = pairs[:0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			// The pieces hold no aliases, and parseChunk and fastParse
			// leave merge keys to the whole parse.
			if k.Kind != yaml.ScalarNode {
				s.errf(k, "", "want a name as key, not a %s", kindName(k))
				continue
			}
			if first, ok := seen[k.Value]; ok {
				s.errf(k, "", "key %s repeated (first at line %d)", quote(k.Value), first)
				continue
			}
			seen[k.Value] = k.Line
			pairs = append(pairs, pair{name: k.Value, key: k, val: v})
		}
		for _, p := range pairs {
			l.jobEntry(top, p)
		}
		if len(l.errs) >= maxErrors {
			return false
		}
	}
	a.reset()
	return true
}

// rollback forgets what reading f added: its jobs, calendars, resources
// and errors. Everything else the loader keeps (zones, compiled
// triggers, strings) is the same whichever way the file is read.
func (l *loader) rollback(f *file) {
	for name, d := range l.jobs {
		if d.s.f == f {
			delete(l.jobs, name)
		}
	}
	for name, c := range l.calendars {
		if c.pos.File == f.name {
			delete(l.calendars, name)
		}
	}
	for name, r := range l.resources {
		if r.pos.File == f.name {
			delete(l.resources, name)
		}
	}
	kept := l.errs[:0]
	for _, e := range l.errs {
		if e.Pos.File != f.name {
			kept = append(kept, e)
		}
	}
	l.errs = kept
	for e := range l.seen {
		if e.Pos.File == f.name {
			delete(l.seen, e)
		}
	}
}
