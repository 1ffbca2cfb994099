//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockFile holds an exclusive flock on PATH.lock, a file beside the
// database, and writes this process's id into it for the message another
// server prints. The lock is a sidecar because SQLite's own locks on the
// database are fcntl locks, which a process loses when it closes any
// descriptor of the file, so Talon must not open the database itself.
// The kernel drops the flock when the process dies, however it dies: a
// stale lock file never blocks a restart. The file is left in place on
// release; removing it would let a third server lock a new file while a
// second still holds the old one.
func lockFile(path string) (func(), error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			var owner string
			if b, rerr := os.ReadFile(name); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					owner = "pid " + strconv.Itoa(pid)
				}
			}
			return nil, &errStateInUse{path: path, owner: owner}
		}
		return nil, fmt.Errorf("lock state store %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
