// Package suggest finds the name a user probably meant, for the "did you
// mean" hints of every error Talon prints.
package suggest

import (
	"fmt"
	"strings"
)

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
