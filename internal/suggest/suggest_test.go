package suggest

import "testing"

func TestNearest(t *testing.T) {
	opts := []string{"schedule", "constraints", "previous", "same"}
	tests := []struct {
		name, in, want string
	}{
		{name: "typo", in: "schedul", want: "schedule"},
		{name: "case", in: "SCHEDULE", want: "schedule"},
		{name: "two edits", in: "constrants", want: "constraints"},
		{name: "prefix", in: "prev", want: "previous"},
		{name: "too far", in: "xyz", want: ""},
		{name: "short and far", in: "ab", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Nearest(tt.in, opts); got != tt.want {
				t.Errorf("Nearest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := DidYouMean("sam", opts); got != `did you mean "same"?` {
		t.Errorf("DidYouMean = %q", got)
	}
	if d := Distance("kitten", "sitting"); d != 3 {
		t.Errorf("Distance = %d, want 3", d)
	}
}
