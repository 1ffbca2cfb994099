package schedule

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a schedule file. Line and Col are 1-based; Col
// counts characters (runes), as the YAML parser does. A zero Line means
// the position is the whole file.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.Col <= 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem in a schedule, at a position, with an optional hint
// such as `did you mean "daily"?`.
type Error struct {
	Pos  Pos
	Msg  string
	Hint string
}

// Error formats e as "file:line:col: message (hint)".
func (e *Error) Error() string {
	s := e.Pos.String() + ": " + e.Msg
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// ErrorList is every problem found in a schedule, sorted by position (the
// shape of go/scanner.ErrorList), so `talon validate` can print them all
// at once instead of making the user fix them one by one.
type ErrorList []*Error

// Error returns the first error and how many more there are; print the
// list element by element to show them all.
func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	return fmt.Sprintf("%s (and %d more errors)", l[0].Error(), len(l)-1)
}

// Err returns l as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Sort orders l by file, line, column and then message.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Msg < b.Msg
	})
}

// suggest returns the option nearest to name by edit distance, or "" when
// none is near enough to be a plausible typo.
func suggest(name string, options []string) string {
	best, bestD := "", -1
	lname := strings.ToLower(name)
	for _, o := range options {
		d := distance(lname, strings.ToLower(o))
		if bestD < 0 || d < bestD || (d == bestD && o < best) {
			best, bestD = o, d
		}
	}
	// Two edits catch most typos; more would suggest unrelated words for
	// short names.
	if bestD >= 0 && bestD <= 2 && bestD < len([]rune(name)) {
		return best
	}
	// An abbreviation ("prev") names the one option it starts.
	if len([]rune(name)) >= 3 {
		var only string
		for _, o := range options {
			if strings.HasPrefix(strings.ToLower(o), lname) {
				if only != "" {
					return ""
				}
				only = o
			}
		}
		return only
	}
	return ""
}

// didYouMean is the hint for a near miss, or "" when there is none.
func didYouMean(name string, options []string) string {
	if s := suggest(name, options); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return ""
}

// distance is the Levenshtein distance between a and b, in runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
