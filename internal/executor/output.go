package executor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Output is where an executor writes what a run prints (its stdout and
// stderr, in the order they came): it masks the values of the job's
// secrets, then appends to the run's log file on the scheduler's host
// (Spec.LogPath), copies to the log store (Spec.Logs, in batches: see
// LogWriter) and hands each line to Spec.OnLine, so "::talon progress"
// lines work whatever the executor. Nothing reaches the file, the store
// or OnLine unmasked: a tail that may be the start of a secret is held
// until the next write tells, or Close.
//
// Executors that get output from elsewhere (an SSH session, an agent)
// copy it into an Output as it comes and Close it when the run ends,
// before its end is reported, so the stored log is complete by then.
type Output struct {
	mu      sync.Mutex
	f       *os.File
	onLine  func(string)
	partial []byte
	werr    error
	mask    *Masker // nil without secrets
	closed  bool

	// The log store's writer is made at the first write, so a run that
	// prints nothing costs nothing there.
	logs   LogStore // nil without a log store
	logOpt LogOptions
	run    int64
	offset int64
	store  *LogWriter
}

// OutputOptions are what NewOutput needs beyond a Spec's fields.
type OutputOptions struct {
	// Offset is where the stored log is continued: 0 for a run that
	// starts, the store's LogSize for an executor that re-attaches to a
	// run still printing.
	Offset int64
	// Logger receives what could not be stored; nil discards.
	Logger *slog.Logger
}

// maxLine bounds a line handed to OnLine: lines longer reach it cut
// short, since they are meant for short "::talon" directives.
const maxLine = 64 << 10

// NewOutput returns the output of the run s describes, or nil when there
// is nowhere to write it (no log file, no log store, no OnLine): a nil
// *Output takes writes and drops them. The log file is created (with its
// directory) and opened for appending at once.
func NewOutput(s Spec, opt OutputOptions) (*Output, error) {
	if s.LogPath == "" && s.Logs == nil && s.OnLine == nil {
		return nil, nil
	}
	o := &Output{onLine: s.OnLine}
	if len(s.Secrets) > 0 {
		o.mask = NewMasker(rawOutput{o}, s.Secrets)
	}
	if s.LogPath != "" {
		// The directory is made only when the file cannot be opened: it
		// is there for every run but the job's first.
		f, err := os.OpenFile(s.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o700); err != nil {
				return nil, fmt.Errorf("create log directory: %w", err)
			}
			f, err = os.OpenFile(s.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		}
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		o.f = f
	}
	if s.Logs != nil {
		o.logs, o.run, o.offset = s.Logs, s.Run.ID, opt.Offset
		o.logOpt = LogOptions{Limit: s.LogLimit, Where: s.LogPath, Logger: opt.Logger}
	}
	return o, nil
}

// hostname is this host's name, for the note at the log store's limit.
var hostname = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return h
})

// rawOutput is the output after masking.
type rawOutput struct{ o *Output }

func (r rawOutput) Write(b []byte) (int, error) { return r.o.write(b) }

// Write never fails: a full disk or a store that is away must not kill
// the command with SIGPIPE. The first file error is kept (Err); the
// store's writer keeps what it could not store and tries again.
func (o *Output) Write(b []byte) (int, error) {
	if o == nil {
		return len(b), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return len(b), nil
	}
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
	if o.logs != nil && len(b) > 0 {
		if o.store == nil {
			if o.logOpt.Where != "" {
				if h := hostname(); h != "" {
					o.logOpt.Where += " on " + h
				}
			}
			o.store = NewLogWriter(o.logs, o.run, o.offset, o.logOpt)
		}
		_, _ = o.store.Write(b) // never fails
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

// Close writes what masking held back and a last line without a
// newline, closes the file and stores what is left in the log store
// (see LogWriter.Close). Later writes are dropped. It returns the log
// store's error, if storing did not finish.
func (o *Output) Close() error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
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
	o.closed = true
	st := o.store
	o.mu.Unlock()
	if st != nil {
		return st.Close()
	}
	return nil
}

// Err is the first error writing the log file, if any: the file then
// lacks what followed (the log store does not).
func (o *Output) Err() error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.werr
}

var _ io.Writer = (*Output)(nil)
