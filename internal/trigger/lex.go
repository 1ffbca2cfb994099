package trigger

import "strings"

// tokKind classifies English tokens (doc.go, Grammar).
type tokKind uint8

const (
	tWord  tokKind = iota // letters first: every, mon, noon, America/New_York
	tNum                  // digits first: 15, 1st, 10am, 09:00, 90m
	tDate                 // YYYY-MM-DD, possibly with a T time (a DATETIME)
	tPunct                // , ; : - +
	tOther                // anything else, always an error
)

type token struct {
	kind       tokKind
	text       string // as written
	low        string // lower case
	off, end   int    // byte offsets in the expression
	spaceAfter bool   // followed by whitespace or the end of the text
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// isDatePrefix reports whether s starts with YYYY-MM-DD.
func isDatePrefix(s string) bool {
	if len(s) < 10 {
		return false
	}
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			if s[i] != '-' {
				return false
			}
		} else if !isDigit(s[i]) {
			return false
		}
	}
	return len(s) == 10 || !isDigit(s[10])
}

// lexEnglish splits s, which starts at byte offset base of the expression,
// into tokens. "-", ",", ";", ":" and "+" are tokens of their own except
// inside dates and times ("09:00", "2027-01-04T09:00:00+01:00").
func lexEnglish(s string, base int) []token {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		if isSpace(c) {
			i++
			continue
		}
		j := i + 1
		kind := tOther
		switch {
		case isDigit(c) && isDatePrefix(s[i:]):
			kind, j = tDate, i+10
			if j < len(s) && (s[j] == 'T' || s[j] == 't') && j+1 < len(s) && isDigit(s[j+1]) {
				for j < len(s) && !isSpace(s[j]) && s[j] != ',' && s[j] != ';' {
					j++
				}
			}
		case isDigit(c):
			kind = tNum
			for j < len(s) && (isDigit(s[j]) || isLetter(s[j]) || s[j] == '.' ||
				s[j] == ':' && j+1 < len(s) && isDigit(s[j+1]) && isDigit(s[j-1])) {
				j++
			}
		case isLetter(c):
			kind = tWord
			for j < len(s) && (isDigit(s[j]) || isLetter(s[j]) || s[j] == '_' || s[j] == '/' || s[j] == '.') {
				j++
			}
		case c == ',' || c == ';' || c == ':' || c == '-' || c == '+':
			kind = tPunct
		default:
			// One whole UTF-8 sequence, so messages quote a real character.
			for j < len(s) && s[j]&0xc0 == 0x80 {
				j++
			}
		}
		out = append(out, token{
			kind: kind, text: s[i:j], low: strings.ToLower(s[i:j]),
			off: base + i, end: base + j, spaceAfter: j == len(s) || isSpace(s[j]),
		})
		i = j
	}
	return out
}
