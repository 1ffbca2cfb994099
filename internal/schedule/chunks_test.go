package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func init() {
	// Any node a draft keeps from a piece's arena without copying it
	// reads as freed, and the tests' errors show it.
	poisonArena = true
}

// fastSeeds are pieces of jobs: sections, some in fastParse's subset and
// some just outside it.
var fastSeeds = []string{
	fmt.Sprintf(job100k, 1) + fmt.Sprintf(job100k, 2),
	"  a:\n    command: [x, 'y z', \"07:00\"]\n    poll: 5m\n    retries: {max: 2, delay: 1m}\n",
	"  a:\n    env:\n      A: 1\n      B: \"two\"\n    # a comment\n\n    params: {n: 1.5, b: true, z: null, t: ~, d: 2026-01-02}\n",
	"  a:\n    triggers: [{schedule: 30 6 * * 1-5, period: previous}, {after: b}]\n",
	"  a:\n    description: a b  c   \n    dir: /tmp/a:b\n",
	"  a:\n    command: [--day, -1, +2, .inf, 0x1F, 1_000]\n",
	"  a:\n    resources: {db/prod: 2}\n    x: {}\n    y: []\n",
	"  a:\n    b: yes\n    c: No\n    d: 012\n    e: 1e3\n",
	"  a:\n    command: [x,]\n",
	"  a:\n    command:\n      - x\n",
	"  a:\n    description: a: b\n",
	"  a:\n    description: a #b\n",
	"  a:\n    description: 'it''s'\n",
	"  a:\n    description: \"a\\tb\"\n",
	"  a:\n    b:\n  c: 1\n",
	"  a:\n      b: 1\n    c: 2\n",
	"  a: &x {b: 1}\n",
}

// FuzzFastParse: whatever fastParse accepts, the YAML parser reads the
// same way, node for node (kind, style, tag, value, line, column).
func FuzzFastParse(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		indent := len(src) - len(strings.TrimLeft(src, " "))
		got := fastParse([]byte(src), 1, indent, &arena{})
		if got == nil {
			return
		}
		dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
		var doc, more yaml.Node
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("fastParse accepted what the YAML parser refuses (%v):\n%s", err, src)
		}
		if err := dec.Decode(&more); err != io.EOF {
			t.Fatalf("fastParse accepted several documents:\n%s", src)
		}
		if diff := sameNodes(doc.Content[0], got, "root"); diff != "" {
			t.Fatalf("%s\nin:\n%s", diff, src)
		}
	})
}

func sameNodes(want, got *yaml.Node, at string) string {
	if want.Kind != got.Kind || want.Style != got.Style || want.ShortTag() != got.ShortTag() ||
		want.Value != got.Value || want.Line != got.Line || want.Column != got.Column ||
		want.Anchor != got.Anchor || len(want.Content) != len(got.Content) {
		return fmt.Sprintf("%s: YAML parser read kind %v style %v tag %s value %q at %d:%d with %d children; fastParse read kind %v style %v tag %s value %q at %d:%d with %d children",
			at, want.Kind, want.Style, want.ShortTag(), want.Value, want.Line, want.Column, len(want.Content),
			got.Kind, got.Style, got.ShortTag(), got.Value, got.Line, got.Column, len(got.Content))
	}
	for i := range want.Content {
		if d := sameNodes(want.Content[i], got.Content[i], fmt.Sprintf("%s/%d", at, i)); d != "" {
			return d
		}
	}
	return ""
}

// The seeds in the subset are read by fastParse, not passed on.
func TestFastParseSubset(t *testing.T) {
	for i, s := range fastSeeds[:8] {
		if fastParse([]byte(s), 1, 2, &arena{}) == nil {
			t.Errorf("seed %d not read by fastParse:\n%s", i, s)
		}
	}
	for i, s := range fastSeeds[8:] {
		if fastParse([]byte(s), 1, 2, &arena{}) != nil {
			t.Errorf("seed %d read by fastParse, want it left to the YAML parser:\n%s", i+8, s)
		}
	}
}

// loadSeeds are schedules for FuzzChunkedLoad: valid ones, and errors
// found while reading a job and once all are read (triggers, references,
// calendars, resources, names repeated across pieces).
var loadSeeds = []string{
	fullExample,
	fmt.Sprintf("jobs:\n"+job100k+job100k+job100k, 1, 2, 3),
	"jobs:\n  a:\n    command: [x]\n  a:\n    command: [y]\n  B:\n    command: [z]\n",
	"jobs:\n  a:\n    command: [x]\n    triggers: [{after: b}, {schedule: \"30 6 * * 1-5\"}, {schedule: 30 6 * * 1-5}, {schedule: \"61 * * * *\"}]\n  b:\n    command: [x]\n    triggers: [{after: a}]\n    constraints: {after: [a, zz], max_running: 0}\n",
	"resources:\n  db/prod: 2\njobs:\n  a:\n    command: [x]\n    resources: {db/prod: 3, db/test: 1}\n    period: {type: daily, calendar: nyse}\n    timezone: Mars/Base\n    poll: 1s\n    retries: {max: 1, delay: 1m, timeouts: true}\n    executor: nope\n",
	"calendars:\n  uk: {holidays: [2026-12-25]}\njobs:\n  a:\n    command: [x]\n    period: {type: daily, calendar: uk}\n    schedule: every business day at 06:00 using uk\n    env: {A: 1, TALON_X: 2}\n    params: {n: 1, m: [1, 2], o: {p: q}}\n# trailing comment\nx-extra: {}\n",
	"jobs:\n  a:\n    command: [x]\n    description: \"a\\tb\"\n  b:\n    command:\n      - y\n  c: &c\n    command: [z]\n",
}

// FuzzChunkedLoad: a schedule read a piece at a time (one job a piece
// here) loads exactly as when read whole: the same errors in the same
// order, or the same jobs.
func FuzzChunkedLoad(f *testing.F) {
	for _, s := range loadSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		defer func(n int) { chunkBytes = n }(chunkBytes)
		chunkBytes = 0
		whole, wholeErr := LoadBytes(testOpt, "f.yaml", []byte(src))
		chunkBytes = 1
		pieces, piecesErr := LoadBytes(testOpt, "f.yaml", []byte(src))
		if w, p := errText(wholeErr), errText(piecesErr); w != p {
			t.Fatalf("errors differ:\nwhole:\n%s\npieces:\n%s\nin:\n%s", w, p, src)
		}
		if wholeErr != nil {
			return
		}
		if whole.Summary() != pieces.Summary() || len(whole.Jobs) != len(pieces.Jobs) {
			t.Fatalf("summaries differ: %q, %q", whole.Summary(), pieces.Summary())
		}
		for i, w := range whole.Jobs {
			p := pieces.Jobs[i]
			wj, pj := w.Job, p.Job
			wj.Location, pj.Location = nil, nil
			if !reflect.DeepEqual(wj, pj) || w.Location.String() != p.Location.String() ||
				len(w.Times) != len(p.Times) || len(w.Checks) != len(p.Checks) || len(w.Requests) != len(p.Requests) {
				t.Fatalf("job %s differs:\nwhole:  %+v\npieces: %+v", w.Name, w.Job, p.Job)
			}
		}
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	var list ErrorList
	if !errors.As(err, &list) {
		return "not a list: " + err.Error()
	}
	var b strings.Builder
	for _, e := range list {
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}
