package executortest

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchStart measures, one run at a time, how long a backend takes from
// dispatch (the engine calling Start) to the job's process running: the
// job is date +%s%N, which prints the time it started at, read back from
// the run's log. It reports the 50th and 99th percentiles of that
// ("start-p50-ms", "start-p99-ms") and of Start's return
// ("return-p50-ms", "return-p99-ms"). The job's clock must be this
// host's: run it against a backend on this host (ssh: on loopback).
func BenchStart(b *testing.B, bk Backend) {
	ex := bk.New()
	if c, ok := ex.(interface{ Close() error }); ok {
		defer c.Close()
	}
	dir := b.TempDir()
	var started, returned []time.Duration
	for b.Loop() {
		s := spec(bk, dir, Job{Mode: ModeNow})
		t0 := time.Now()
		p, err := ex.Start(b.Context(), s)
		if err != nil {
			b.Fatalf("Start: %v", err)
		}
		returned = append(returned, time.Since(t0))
		if o := p.Wait(); !o.Succeeded {
			b.Fatalf("outcome = %+v", o)
		}
		out, err := os.ReadFile(s.LogPath)
		if err != nil {
			b.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			b.Fatalf("the job printed %q, want nanoseconds", out)
		}
		started = append(started, time.Unix(0, ns).Sub(t0))
		_ = os.Remove(s.LogPath)
	}
	report(b, "start", started)
	report(b, "return", returned)
}

func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q * float64(len(ds)-1))
		return float64(ds[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), name+"-p50-ms")
	b.ReportMetric(at(0.99), name+"-p99-ms")
}
