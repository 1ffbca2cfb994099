package schedule

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// job100k is one job of the 100,000-job schedules the memory and
// validation benchmarks load (the same shape as the engine's
// BenchmarkMemory100kJobs and the cli's BenchmarkValidate100kJobs).
const job100k = `  j%[1]d:
    period: daily
    timezone: Europe/London
    triggers: [{schedule: "30 6 * * 1-5"}]
    constraints: {not_before: "07:00", max_running: 1}
    command: [/bin/true, "--day"]
`

// BenchmarkLoad100kJobs loads a 100,000-job schedule in process, for
// profiling the loader (-memprofile, -cpuprofile). "MB" is the heap the
// loaded schedule holds (HeapInuse after a GC, minus before); alloc-MB is
// all the loader allocated, which is what drives a validate's peak RSS.
func BenchmarkLoad100kJobs(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("jobs:\n")
	for i := range 100000 {
		fmt.Fprintf(&sb, job100k, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := LoadBytes(testOpt, "bench.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(s)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "MB")
		b.ReportMetric(float64(alloc)/(1<<20), "alloc-MB")
	}
}
