//go:build linux

package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkValidate100kJobs is the validation figure: `talon validate` on
// a 100,000-job schedule file (18.8 MB of YAML, each job with a period,
// a zone, a cron trigger, two constraints and a command), run as the
// built binary in its own process, as a user runs it. It reports the
// wall time per validate (s/op, from start to exit, process start
// included) and "MB", the process's peak resident set (ru_maxrss, what
// `/usr/bin/time -v` calls "Maximum resident set size"): the memory a
// machine must have to validate, which the in-process heap figures
// (live heap after, total allocated) both miss.
//
//	go test -run '^$' -bench Validate100kJobs -benchtime 3x ./internal/cli/
func BenchmarkValidate100kJobs(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "talon")
	build := exec.Command("go", "build", "-o", bin, "github.com/talonhq/talon/cmd/talon")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var sb strings.Builder
	sb.WriteString("jobs:\n")
	for i := range 100000 {
		fmt.Fprintf(&sb, `  j%[1]d:
    period: daily
    timezone: Europe/London
    triggers: [{schedule: "30 6 * * 1-5"}]
    constraints: {not_before: "07:00", max_running: 1}
    command: [/bin/true, "--day"]
`, i)
	}
	file := filepath.Join(dir, "jobs.yaml")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	var rss, secs float64
	n := 0
	b.ResetTimer()
	for b.Loop() {
		var out bytes.Buffer
		cmd := exec.Command(bin, "validate", file)
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		secs += time.Since(start).Seconds()
		if err != nil || !strings.HasPrefix(out.String(), "ok: 100000 jobs") {
			b.Fatalf("talon validate: %v\n%s", err, out.String())
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			b.Fatal("no resource usage for the validate process")
		}
		rss += float64(ru.Maxrss) / 1024 // kilobytes on Linux
		n++
	}
	b.ReportMetric(secs/float64(n), "s/op")
	b.ReportMetric(rss/float64(n), "MB")
}
