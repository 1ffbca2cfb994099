// Package artifact is what Talon accepts as an artifact — a URL a run
// produced — and how schedules name artifacts before they exist: URL
// templates with placeholders for the run's period, and patterns with a
// `*` glob, for the artifact constraint.
//
// An artifact's URL is shown by the CLI, the API and a dashboard, and
// may be followed by whoever reads it; so only schemes that name data
// are accepted (Schemes), never javascript:, data: or vbscript:. Every
// way in — the API, `talon artifact add`, a "::talon artifact" output
// line, a schedule's declaration or constraint — asks CheckURL.
package artifact

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Schemes are the URL schemes an artifact may have: files and object
// stores, file systems of data platforms, web resources, and database
// tables. Anything else is refused.
var Schemes = []string{
	"file",
	"s3", "s3a", "gs", "az", "abfs", "abfss", "wasbs", "hdfs",
	"http", "https", "sftp",
	"postgres", "postgresql", "mysql", "bigquery", "snowflake", "table",
}

// MaxURL bounds an artifact's URL, in bytes.
const MaxURL = 4096

// CheckURL returns nil when u may be recorded as an artifact: at most
// MaxURL bytes, no spaces or control characters, a scheme of Schemes,
// and something after it. Its error says which rule u breaks and, for a
// scheme, which are allowed.
func CheckURL(u string) error { return checkURL(u, u) }

// checkURL checks u and names it as shown in errors (a pattern, before
// its placeholders were filled in).
func checkURL(u, shown string) error {
	if u == "" {
		return fmt.Errorf("artifact URL is empty")
	}
	if len(u) > MaxURL {
		return fmt.Errorf("artifact URL of %d bytes: want at most %d", len(u), MaxURL)
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("artifact URL %q: contains a space or control character (escape it, as %%20)", shown)
		}
	}
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || !schemeRE.MatchString(scheme) {
		return fmt.Errorf("artifact URL %q: want SCHEME:…, with a scheme of %s", shown, strings.Join(Schemes, ", "))
	}
	if !slices.Contains(Schemes, strings.ToLower(scheme)) {
		return fmt.Errorf("artifact URL %q: scheme %q is not allowed (allowed: %s)", shown, scheme, strings.Join(Schemes, ", "))
	}
	if strings.Trim(rest, "/") == "" {
		return fmt.Errorf("artifact URL %q: nothing after the scheme", shown)
	}
	if _, err := url.Parse(u); err != nil {
		return fmt.Errorf("artifact URL %q: %v", shown, urlErr(err))
	}
	return nil
}

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// urlErr drops url.Error's repetition of the URL.
func urlErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Names of artifacts follow the rule of job names, so they read the
// same in the CLI, the API and the schedule.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// MaxName bounds an artifact's name, in bytes.
const MaxName = 128

// CheckName returns nil when name may name an artifact: empty (no
// name), or lowercase letters, digits, '_', '.' and '-', starting with a
// letter or digit, at most MaxName bytes.
func CheckName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > MaxName || !nameRE.MatchString(name) {
		return fmt.Errorf("artifact name %q: use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit (at most %d)", name, MaxName)
	}
	return nil
}
