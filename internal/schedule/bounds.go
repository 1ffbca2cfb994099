package schedule

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Bounds of the schedule's numbers and durations. Past them a value is a
// typo or a mistake rather than a wish (a 1ns retry delay made 699 runs
// in 5 s), and a clear error beats a scheduler that does what it was told.
// The README's schedule section lists them; keep both in step.
const (
	day = 24 * time.Hour

	MinPoll = time.Second
	MaxPoll = day

	MinTimeout = time.Second
	MaxTimeout = 30 * day

	MaxRetries    = 100
	MinRetryDelay = time.Second
	MaxRetryDelay = 7 * day

	MinCatchupWindow = time.Second
	MaxCatchupWindow = 366 * day

	MinPriority = -1000
	MaxPriority = 1000

	// MaxCapacity bounds a resource's capacity and a request's count:
	// room for a daily API quota, not for an overflow.
	MaxCapacity = 1_000_000_000
)

// span formats a bound for messages: several whole days as "30d", else Go's
// form ("24h0m0s" is written "24h").
func span(d time.Duration) string {
	if d > day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	for _, suffix := range []string{"m0s", "h0m"} {
		if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
			s = s[:len(s)-len(suffix)+1]
		}
	}
	return s
}

// durationSyntax matches what reads as a duration even when it is too
// large for one (100000000h), so the error can give the range instead of
// the format.
var durationSyntax = regexp.MustCompile(`^[0-9.]+(ns|us|µs|ms|s|m|h)([0-9.]+(ns|us|µs|ms|s|m|h))*$|^[0-9]+d$`)

// durationIn reads a duration from lo to hi. When zero is not "", 0 is
// allowed too and means zero (such as "none" or "at once").
func (s scope) durationIn(n *yaml.Node, lo, hi time.Duration, zero string) (time.Duration, bool) {
	dn := deref(n)
	want := func() string { // only for errors: most jobs have none
		if zero != "" {
			return fmt.Sprintf("want 0 (%s) or a duration from %s to %s", zero, span(lo), span(hi))
		}
		return fmt.Sprintf("want a duration from %s to %s", span(lo), span(hi))
	}
	if dn.Kind != yaml.ScalarNode || dn.ShortTag() == "!!null" {
		s.errf(n, "", "%s, not a %s", want(), kindName(dn))
		return 0, false
	}
	d, err := parseDuration(dn.Value)
	switch {
	case err != nil && !durationSyntax.MatchString(dn.Value):
		s.errf(n, "", "want a duration like 1m or 90s, not %s", quote(dn.Value))
		return 0, false
	case err != nil, d < 0, d == 0 && zero == "", d != 0 && (d < lo || d > hi):
		s.errf(n, "", "%s, not %s", want(), quote(dn.Value))
		return 0, false
	}
	return d, true
}

// integerIn reads a whole number from lo to hi.
func (s scope) integerIn(n *yaml.Node, lo, hi int, want string) (int, bool) {
	v, ok := s.integer(n, want)
	if !ok {
		return 0, false
	}
	if v < lo || v > hi {
		s.errf(n, "", "want a whole number from %d to %d, not %d", lo, hi, v)
		return 0, false
	}
	return v, true
}
