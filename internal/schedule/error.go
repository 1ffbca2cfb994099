package schedule

import (
	"fmt"
	"sort"

	"github.com/talonhq/talon/internal/suggest"
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

// didYouMean is the hint for a near miss, or "" when there is none.
func didYouMean(name string, options []string) string {
	return suggest.DidYouMean(name, options)
}

// quote is strconv.Quote of s cut to a length a message can repeat.
func quote(s string) string { return suggest.Quote(s) }
