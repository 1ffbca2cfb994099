package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// installLine finds the README's install command: optional VAR=value
// assignments, then "go install ./cmd/talon", in backquotes.
var installLine = regexp.MustCompile("`((?:[A-Z_]+=\\S+ )*)go install ./cmd/talon`")

// TestInstallIsStatic runs the README's install command as it is written
// and checks its promise: a static binary, one with no ELF interpreter
// (no dynamic loader, no libc), that runs on any Linux of its
// architecture. With cgo on (Go's default where a C compiler exists) the
// net and os/user packages link libc, so the command must say otherwise.
func TestInstallIsStatic(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "static") {
		t.Skip("the README makes no claim of a static binary")
	}
	m := installLine.FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README claims a static binary but has no `go install ./cmd/talon` command")
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", ".")
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-buildvcs=false")
	cmd.Env = append(cmd.Env, strings.Fields(string(m[1]))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", m[0], err, out)
	}
	f, err := elf.Open(filepath.Join(gobin, "talon"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s gives a dynamically linked binary (it has an ELF interpreter), but the README says static", m[0])
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("%s gives a binary that needs %v, but the README says static", m[0], libs)
	}
}
