//go:build linux

package local_test

import (
	"path/filepath"
	"testing"

	"github.com/talonhq/talon/internal/executor/local"
)

// BenchmarkStart measures what the executor adds to every run: starting
// /bin/true and waiting for its outcome, with a log file.
func BenchmarkStart(b *testing.B) {
	ex := local.New(nil)
	s := spec(b.TempDir(), "/bin/true")
	s.LogPath = filepath.Join(b.TempDir(), "true.log")
	for b.Loop() {
		p, err := ex.Start(b.Context(), s)
		if err != nil {
			b.Fatalf("Start: %v", err)
		}
		if o := p.Wait(); !o.Succeeded {
			b.Fatalf("outcome = %+v", o)
		}
	}
}
