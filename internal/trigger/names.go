package trigger

import cut "github.com/talonhq/talon/internal/suggest"

// quote quotes a piece of the expression for a message, cut to a length a
// message can repeat: an error in a 100 KB expression must not echo it.
func quote(s string) string { return cut.Quote(s) }

// suggest returns a "did you mean" hint for word among the short and
// full names, or "" when nothing is close.
func suggest(word string, short []string, full []string) string {
	best, bestD := "", 3
	for i, s := range short {
		// "sept", "thurs", "tues": a full-name prefix longer than the
		// abbreviation.
		if len(word) > len(s) && i < len(full) && len(word) < len(full[i]) && full[i][:len(word)] == word {
			return "did you mean " + quote(s) + "?"
		}
		if d := editDistance(word, s); d < bestD {
			best, bestD = s, d
		}
		if i < len(full) {
			if d := editDistance(word, full[i]); d < bestD {
				best, bestD = full[i], d
			}
		}
	}
	if best == "" {
		return ""
	}
	return "did you mean " + quote(best) + "?"
}

// editDistance is the Levenshtein distance, for short words.
func editDistance(a, b string) int {
	if len(a) > 32 || len(b) > 32 {
		return 99
	}
	var prev, cur [33]int
	for j := 0; j <= len(b); j++ {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev = cur
	}
	return prev[len(b)]
}
