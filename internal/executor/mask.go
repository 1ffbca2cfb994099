package executor

import (
	"bytes"
	"io"
	"sort"
)

// Mask is what a secret value is replaced with.
const Mask = "***"

// Masker is a writer that replaces every occurrence of the secret values
// it was given with Mask before its output reaches the writer under it,
// also when a value is split across writes: a tail that may be the
// beginning of a secret is held back until the next write tells, or
// until Flush. Executors put one in front of a run's log.
type Masker struct {
	w       io.Writer
	secrets [][]byte // longest first, so a secret containing another is masked whole
	held    []byte
	out     []byte
}

// NewMasker returns a Masker writing to w. Empty values are ignored (they
// would match everywhere); with no secrets it passes writes through.
func NewMasker(w io.Writer, secrets []string) *Masker {
	m := &Masker{w: w}
	for _, s := range secrets {
		if s != "" {
			m.secrets = append(m.secrets, []byte(s))
		}
	}
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
	return m
}

// Write masks p and writes what is certain not to be (part of) a secret.
// It reports len(p) written unless the writer under it fails.
func (m *Masker) Write(p []byte) (int, error) {
	if len(m.secrets) == 0 {
		return m.w.Write(p)
	}
	if err := m.mask(append(m.held, p...), false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush masks and writes what was held back: the output ended, so what
// may have become a longer secret is what it is.
func (m *Masker) Flush() error {
	if len(m.held) == 0 {
		return nil
	}
	return m.mask(m.held, true)
}

// mask writes buf with its secrets masked; unless final, a tail that may
// be the start of a secret is kept in m.held instead.
func (m *Masker) mask(buf []byte, final bool) error {
	m.held = nil
	out := m.out[:0]
	i := 0
scan:
	for i < len(buf) {
		rest := buf[i:]
		for _, s := range m.secrets {
			if rest[0] != s[0] {
				continue
			}
			if bytes.HasPrefix(rest, s) {
				out = append(out, Mask...)
				i += len(s)
				continue scan
			}
			if !final && len(rest) < len(s) && bytes.HasPrefix(s, rest) {
				// The next write may complete the secret.
				m.held = append([]byte(nil), rest...)
				break scan
			}
		}
		out = append(out, buf[i])
		i++
	}
	m.out = out
	if len(out) == 0 {
		return nil
	}
	_, err := m.w.Write(out)
	return err
}
