package local

import (
	"slices"
	"testing"
)

// TestTrimEnv: only an environment that starts with the supervisor's
// own is sent without it.
func TestTrimEnv(t *testing.T) {
	sup := &supervisor{baseEnv: []string{"A=1", "B=2"}}
	tests := []struct {
		env  []string
		want []string
		base bool
	}{
		{env: []string{"A=1", "B=2", "C=3"}, want: []string{"C=3"}, base: true},
		{env: []string{"A=1", "B=2"}, want: []string{}, base: true},
		{env: []string{"A=1", "B=9", "C=3"}, want: []string{"A=1", "B=9", "C=3"}},
		{env: []string{"B=2", "A=1", "C=3"}, want: []string{"B=2", "A=1", "C=3"}},
		{env: []string{"A=1"}, want: []string{"A=1"}},
	}
	for _, tt := range tests {
		got, base := sup.trimEnv(tt.env)
		if !slices.Equal(got, tt.want) || base != tt.base {
			t.Errorf("trimEnv(%q) = %q, %v; want %q, %v", tt.env, got, base, tt.want, tt.base)
		}
	}
}
