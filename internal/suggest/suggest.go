// Package suggest words the parts of Talon's error messages that speak of
// what the user wrote: the name they probably meant, for the "did you
// mean" hints, and their input cut to a length a message can repeat.
package suggest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxEcho bounds how much of a value an error message repeats: enough to
// recognise it, never all of a 100 KB expression.
const MaxEcho = 80

// Cut shortens s to MaxEcho characters, ending with "…" when it cut.
func Cut(s string) string {
	if len(s) <= MaxEcho || utf8.RuneCountInString(s) <= MaxEcho {
		return s
	}
	return string([]rune(s)[:MaxEcho-1]) + "…"
}

// Quote is strconv.Quote of s cut to MaxEcho characters.
func Quote(s string) string { return strconv.Quote(Cut(s)) }

// Nearest returns the option nearest to name by edit distance, ignoring
// case, or "" when none is near enough to be a plausible typo. A prefix of
// three or more letters ("prev") names the one option it starts.
func Nearest(name string, options []string) string {
	best, bestD := "", -1
	lname := strings.ToLower(name)
	for _, o := range options {
		d := Distance(lname, strings.ToLower(o))
		if bestD < 0 || d < bestD || (d == bestD && o < best) {
			best, bestD = o, d
		}
	}
	// Two edits catch most typos; more would suggest unrelated words for
	// short names.
	if bestD >= 0 && bestD <= 2 && bestD < len([]rune(name)) {
		return best
	}
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

// DidYouMean is the hint `did you mean "x"?` for a near miss, or "".
func DidYouMean(name string, options []string) string {
	if s := Nearest(name, options); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return ""
}

// Distance is the Levenshtein distance between a and b, in runes.
func Distance(a, b string) int {
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
