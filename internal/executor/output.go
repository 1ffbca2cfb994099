package executor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Output is a run's output as an executor receives it: it appends to the
// run's log file and hands each line to the engine (Spec.OnLine).
// The values of the job's secrets are masked first (the
// file and onLine see "***"); every other byte reaches the file as it
// arrives, but for a tail that may be the start of a secret, held until
// the next write or the end. Lines longer than maxLine reach onLine cut
// short, since they are meant for short "::talon" directives.
type Output struct {
	mu      sync.Mutex
	f       *os.File
	onLine  func(string)
	partial []byte
	werr    error
	mask    *Masker // nil without secrets
}

// rawOutput is the output after masking.
type rawOutput struct{ o *Output }

func (r rawOutput) Write(b []byte) (int, error) { return r.o.write(b) }

const maxLine = 64 << 10

// OpenOutput opens the output of a run that logs to path (none when "")
// and hands its lines to onLine (none when nil), masking secrets. It
// returns nil, a valid Output that discards, when there is neither.
func OpenOutput(path string, onLine func(string), secrets []string) (*Output, error) {
	if path == "" && onLine == nil {
		return nil, nil
	}
	o := &Output{onLine: onLine}
	if len(secrets) > 0 {
		o.mask = NewMasker(rawOutput{o}, secrets)
	}
	if path != "" {
		// The directory is made only when the file cannot be opened: it
		// is there for every run but the job's first.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("create log directory: %w", err)
			}
			f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		}
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		o.f = f
	}
	return o, nil
}

// Write never fails (and a nil Output discards): a full disk must not kill the command with SIGPIPE.
// The first write error is kept for the executor's log.
func (o *Output) Write(b []byte) (int, error) {
	if o == nil {
		return len(b), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mask != nil {
		_, _ = o.mask.Write(b) // rawOutput never fails
		return len(b), nil
	}
	return o.write(b)
}

// write writes masked output; o.mu is held.
func (o *Output) write(b []byte) (int, error) {
	if o.f != nil && o.werr == nil {
		if _, err := o.f.Write(b); err != nil {
			o.werr = err
		}
	}
	if o.onLine == nil {
		return len(b), nil
	}
	rest := b
	for len(rest) > 0 {
		i := indexNL(rest)
		if i < 0 {
			o.appendPartial(rest)
			break
		}
		o.appendPartial(rest[:i])
		o.emit()
		rest = rest[i+1:]
	}
	return len(b), nil
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

func (o *Output) appendPartial(b []byte) {
	if room := maxLine - len(o.partial); room > 0 {
		if len(b) > room {
			b = b[:room]
		}
		o.partial = append(o.partial, b...)
	}
}

func (o *Output) emit() {
	line := strings.TrimSuffix(string(o.partial), "\r")
	o.partial = o.partial[:0]
	o.onLine(line)
}

// Close flushes a last line without a newline and closes the file.
func (o *Output) Close() {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mask != nil {
		_ = o.mask.Flush() // rawOutput never fails
	}
	if o.onLine != nil && len(o.partial) > 0 {
		o.emit()
	}
	if o.f != nil {
		if err := o.f.Close(); err != nil && o.werr == nil {
			o.werr = err
		}
		o.f = nil
	}
}

// Err is the first error writing the log file met, if any.
func (o *Output) Err() error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.werr
}

var _ io.Writer = (*Output)(nil)
