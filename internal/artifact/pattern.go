package artifact

import (
	"fmt"
	"regexp"
	"strings"
)

// The placeholders a pattern may hold, replaced by parts of the period
// the artifact belongs to (for the key prod:daily/2026-11-26):
//
//	{{period}}       2026-11-26 (the key without environment and type:
//	                 2026-W48, 2026-11, 2026-Q4, 2026, 2026-11-26T06, or
//	                 a oneshot period's name)
//	{{period_type}}  daily
//	{{environment}}  prod (an error for a period without environment)
var Placeholders = []string{"period", "period_type", "environment"}

// MaxStars bounds the `*` of one pattern.
const MaxStars = 16

// Pattern is an artifact URL as a schedule writes it before the artifact
// exists: placeholders for the period, and `*`, which matches any run of
// characters except '/' (so it stays within one path segment). A
// pattern without `*` names exactly one URL per period.
type Pattern struct {
	raw string
}

// ParsePattern checks s: known placeholders only, closed braces, at most
// MaxStars stars, and, with placeholders filled in, a URL CheckURL
// accepts (so its scheme is written literally).
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{raw: s}
	if strings.Count(s, "*") > MaxStars {
		return p, fmt.Errorf("%q: more than %d '*'", s, MaxStars)
	}
	if scheme, _, ok := strings.Cut(s, ":"); ok && strings.ContainsAny(scheme, "{*") {
		return p, fmt.Errorf("%q: write the URL's scheme out (one of %s), not with a placeholder or '*'", s, strings.Join(Schemes, ", "))
	}
	sample, err := expand(s, func(name string) (string, error) { return "x", nil })
	if err != nil {
		return p, fmt.Errorf("%q: %w", s, err)
	}
	return p, checkURL(strings.ReplaceAll(sample, "*", "x"), s)
}

// String is the pattern as written.
func (p Pattern) String() string { return p.raw }

// Uses reports whether the pattern holds the placeholder {{name}}.
func (p Pattern) Uses(name string) bool { return strings.Contains(p.raw, "{{"+name+"}}") }

// Glob is a pattern with its placeholders filled in for one period.
type Glob struct {
	text string
	re   *regexp.Regexp // nil when text has no '*': compared as is
}

// Expand fills in p's placeholders from the period key (such as
// "prod:daily/2026-11-26"). It fails when the pattern needs a part the
// key lacks ({{environment}} of a period without one).
func (p Pattern) Expand(periodKey string) (Glob, error) {
	env, rest, ok := strings.Cut(periodKey, ":")
	if !ok {
		env, rest = "", periodKey
	}
	typ, name, ok := strings.Cut(rest, "/")
	if !ok || typ == "" || name == "" {
		return Glob{}, fmt.Errorf("period %q: want a key like daily/2026-11-26", periodKey)
	}
	text, err := expand(p.raw, func(ph string) (string, error) {
		switch ph {
		case "period":
			return name, nil
		case "period_type":
			return typ, nil
		case "environment":
			if env == "" {
				return "", fmt.Errorf("{{environment}}: period %s has no environment", periodKey)
			}
			return env, nil
		}
		return "", fmt.Errorf("unknown placeholder {{%s}}", ph)
	})
	if err != nil {
		return Glob{}, err
	}
	g := Glob{text: text}
	if strings.Contains(text, "*") {
		parts := strings.Split(text, "*")
		for i, s := range parts {
			parts[i] = regexp.QuoteMeta(s)
		}
		g.re = regexp.MustCompile("^" + strings.Join(parts, "[^/]*") + "$")
	}
	return g, nil
}

// String is the expanded pattern.
func (g Glob) String() string { return g.text }

// Match reports whether url is an artifact the glob names.
func (g Glob) Match(url string) bool {
	if g.re == nil {
		return url == g.text
	}
	return g.re.MatchString(url)
}

// expand replaces each {{name}} of s with value(name), and refuses
// unknown names and unclosed braces.
func expand(s string, value func(string) (string, error)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if strings.Contains(s, "}}") {
				return "", fmt.Errorf("'}}' without '{{'")
			}
			b.WriteString(s)
			return b.String(), nil
		}
		if strings.Contains(s[:i], "}}") {
			return "", fmt.Errorf("'}}' without '{{'")
		}
		b.WriteString(s[:i])
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("'{{' without '}}'")
		}
		name := s[i+2 : i+j]
		if !known(name) {
			return "", fmt.Errorf("unknown placeholder {{%s}} (want %s)", name, placeholderList())
		}
		v, err := value(name)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		s = s[i+j+2:]
	}
}

func known(name string) bool {
	for _, p := range Placeholders {
		if p == name {
			return true
		}
	}
	return false
}

func placeholderList() string {
	out := make([]string, len(Placeholders))
	for i, p := range Placeholders {
		out[i] = "{{" + p + "}}"
	}
	return strings.Join(out, ", ")
}
