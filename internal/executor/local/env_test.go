package local

import (
	"slices"
	"testing"
)

func TestDedupEnv(t *testing.T) {
	got := dedupEnv([]string{"A=1", "B=2", "=C:=x", "A=3", "noequals", "B=", "=C:=y"})
	want := []string{"A=3", "noequals", "B=", "=C:=y"}
	if !slices.Equal(got, want) {
		t.Errorf("dedupEnv = %q, want %q", got, want)
	}
}
