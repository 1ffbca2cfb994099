package server

import (
	"fmt"
	"strings"
)

// errStateInUse says that another scheduler (talon serve, or a program
// embedding Talon) has the SQLite state file.
// The embedded store is for one scheduler: two on one file would both
// fire every trigger's runs (idempotently, but each would start and
// judge the other's), and neither would know of the other.
type errStateInUse struct {
	path  string
	owner string // "pid 1234", or "" when the lock file does not say
}

func (e *errStateInUse) Error() string {
	who := "another Talon scheduler"
	if e.owner != "" {
		who += " (" + e.owner + ")"
	}
	return fmt.Sprintf("state store sqlite:%s is in use by %s; the embedded SQLite store serves one scheduler, and several schedulers share a PostgreSQL database", e.path, who)
}

// sqlitePath returns the file of an sqlite: state URL, as the store opens
// it, and false for other stores.
func sqlitePath(state string) (string, bool) {
	p, ok := strings.CutPrefix(state, "sqlite:")
	if !ok {
		return "", false
	}
	return strings.TrimPrefix(p, "//"), true
}

// LockState takes the state store for this scheduler's lifetime when it
// is an SQLite file, so that a second scheduler on the same file (another
// talon serve, a program embedding Talon, or a second one in this
// process) refuses to start instead of sharing it silently. It is taken here rather than
// in the store, which may be opened twice in one process on purpose (the
// conformance suite races two handles). The returned func releases it.
func LockState(state string) (release func(), err error) {
	path, ok := sqlitePath(state)
	if !ok || path == "" {
		return func() {}, nil
	}
	return lockFile(path)
}
