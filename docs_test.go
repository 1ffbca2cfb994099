package talon_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The design notes the project started from live beside the repository,
// not in it; the project's own documentation is docs/. Spelled in two
// parts so this file does not cite them itself.
var outsideDocs = []string{"DESIGN" + ".md", "TRIGGERS" + ".md"}

// sourceExts are the files whose comments may cite documents.
var sourceExts = map[string]bool{".go": true, ".sql": true}

// TestNoOutsideDocs fails when a source file or a document of the
// repository cites a document that is not in it.
func TestNoOutsideDocs(t *testing.T) {
	walk(t, func(path string, b []byte) {
		ext := filepath.Ext(path)
		if !sourceExts[ext] && ext != ".md" {
			return
		}
		forLines(b, func(n int, line string) {
			for _, d := range outsideDocs {
				if strings.Contains(line, d) {
					t.Errorf("%s:%d: cites %s, which is not in the repository; cite docs/ or the README instead", path, n, d)
				}
			}
		})
	})
}

// TestDocLinks fails when a relative link of the README or of docs/, or a
// docs/ citation in a source file, points to a file or a heading that
// does not exist.
func TestDocLinks(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md files; run the test from the module root")
	}
	for _, path := range append([]string{"README.md"}, docs...) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		forProse(b, func(n int, line string) {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				if file == "" {
					file = path
				} else {
					file = filepath.Join(filepath.Dir(path), file)
				}
				if err := checkTarget(file, anchor); err != nil {
					t.Errorf("%s:%d: link %s: %v", path, n, target, err)
				}
			}
		})
	}
	walk(t, func(path string, b []byte) {
		if !sourceExts[filepath.Ext(path)] {
			return
		}
		forLines(b, func(n int, line string) {
			for _, m := range docCite.FindAllStringSubmatch(line, -1) {
				if err := checkTarget(m[1], m[3]); err != nil {
					t.Errorf("%s:%d: %s: %v", path, n, m[0], err)
				}
			}
		})
	})
}

var (
	// mdLink is an inline Markdown link; its target has no spaces.
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// docCite is a citation such as docs/model.md#vocabulary in a comment.
	docCite = regexp.MustCompile(`(docs/[a-z0-9_-]+\.md)(#([a-z0-9_-]+))?`)
)

// checkTarget reports whether file exists and, when anchor is set, has a
// heading whose GitHub anchor is anchor.
func checkTarget(file, anchor string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("no such file %s", file)
	}
	if anchor == "" {
		return nil
	}
	if !strings.HasSuffix(file, ".md") {
		return fmt.Errorf("%s is not Markdown, so it has no #%s", file, anchor)
	}
	anchors := headingAnchors(b)
	if !anchors[anchor] {
		return fmt.Errorf("%s has no heading #%s", file, anchor)
	}
	return nil
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown document: lowercase, punctuation dropped, spaces turned into
// hyphens, and -1, -2 … appended to repeats.
func headingAnchors(b []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	forProse(b, func(_ int, line string) {
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") || len(line)-len(strings.TrimLeft(line, "#")) > 6 {
			return
		}
		// A link in a heading keeps only its text.
		text = headingLink.ReplaceAllString(text, "$1")
		var a strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				a.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				a.WriteRune(r)
			}
		}
		anchor := a.String()
		if n := seen[anchor]; n > 0 {
			seen[anchor]++
			anchor = fmt.Sprintf("%s-%d", anchor, n)
		} else {
			seen[anchor] = 1
		}
		out[anchor] = true
	})
	return out
}

var headingLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// forLines calls fn with each line of b and its number.
func forLines(b []byte, fn func(n int, line string)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		fn(n, sc.Text())
	}
}

// forProse calls fn with each line of a Markdown document outside fenced
// code blocks.
func forProse(b []byte, fn func(n int, line string)) {
	fenced := false
	forLines(b, func(n int, line string) {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			return
		}
		if !fenced {
			fn(n, line)
		}
	})
}

// walk calls fn with every text file of the repository, skipping hidden
// directories, files over 4 MiB and binary files (a NUL byte), such as a
// state database left by the quick start.
func walk(t *testing.T, fn func(path string, b []byte)) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || info.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil
		}
		fn(filepath.ToSlash(path), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
