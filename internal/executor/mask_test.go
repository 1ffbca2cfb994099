package executor_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/talonhq/talon/internal/executor"
)

func TestMasker(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{name: "none", secrets: nil, in: "hunter2 as is", want: "hunter2 as is"},
		{name: "one", secrets: []string{"hunter2"}, in: "pw=hunter2.", want: "pw=***."},
		{name: "twice and adjacent", secrets: []string{"ab1"}, in: "ab1ab1 xab1", want: "****** x***"},
		{name: "prefix that is not the secret", secrets: []string{"hunter2"}, in: "hunter3 hunte", want: "hunter3 hunte"},
		{name: "longest first", secrets: []string{"abc", "abcdef"}, in: "abcdef abc", want: "*** ***"},
		{name: "overlapping start", secrets: []string{"aab"}, in: "aaab", want: "a***"},
		{name: "empty secret ignored", secrets: []string{"", "x9"}, in: "x9 y", want: "*** y"},
		{name: "multi-line", secrets: []string{"s3cr3t"}, in: "line s3cr3t\ns3cr3t\n", want: "line ***\n***\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every way of cutting the input in two writes, and byte by
			// byte, gives the same output: a secret split across writes
			// is masked too.
			for cut := 0; cut <= len(tt.in); cut++ {
				var out bytes.Buffer
				m := executor.NewMasker(&out, tt.secrets)
				for _, part := range []string{tt.in[:cut], tt.in[cut:]} {
					if n, err := m.Write([]byte(part)); err != nil || n != len(part) {
						t.Fatalf("Write = %d, %v", n, err)
					}
				}
				if err := m.Flush(); err != nil {
					t.Fatal(err)
				}
				if out.String() != tt.want {
					t.Fatalf("cut at %d: %q, want %q", cut, out.String(), tt.want)
				}
			}
			var out bytes.Buffer
			m := executor.NewMasker(&out, tt.secrets)
			for i := range len(tt.in) {
				m.Write([]byte{tt.in[i]})
			}
			m.Flush()
			if out.String() != tt.want {
				t.Fatalf("byte by byte: %q, want %q", out.String(), tt.want)
			}
		})
	}
}

// What may still be a secret is held back, and nothing else: a log
// follower sees every other byte at once.
func TestMaskerHoldsOnlyAPossibleSecret(t *testing.T) {
	var out bytes.Buffer
	m := executor.NewMasker(&out, []string{"hunter2"})
	m.Write([]byte("progress 40% hun"))
	if got := out.String(); got != "progress 40% " {
		t.Fatalf("after a possible start: %q", got)
	}
	m.Write([]byte("gry\n"))
	if got := out.String(); got != "progress 40% hungry\n" {
		t.Fatalf("after it turned out not to be: %q", got)
	}
	big := strings.Repeat("x", 1<<16)
	m.Write([]byte(big + "hunter2"))
	m.Flush()
	if !strings.HasSuffix(out.String(), "x***") {
		t.Fatalf("a long write ending in the secret: %q", out.String()[out.Len()-10:])
	}
}
