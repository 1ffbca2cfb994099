package schedule

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

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
		got := fastParse([]byte(src), 1, indent)
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
		if fastParse([]byte(s), 1, 2) == nil {
			t.Errorf("seed %d not read by fastParse:\n%s", i, s)
		}
	}
	for i, s := range fastSeeds[8:] {
		if fastParse([]byte(s), 1, 2) != nil {
			t.Errorf("seed %d read by fastParse, want it left to the YAML parser:\n%s", i+8, s)
		}
	}
}
