package calendar

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// TestResolveOracle checks Resolve against every row of the CPython
// zoneinfo (PEP 495) vectors in testdata/dst-resolve.tsv, a copy of
// oracle/dst-resolve.tsv.
func TestResolveOracle(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/dst-resolve.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	rows := 0
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 5 {
			t.Fatalf("row %q: want 5 columns", sc.Text())
		}
		rows++
		zone, wall, kind, fold0, fold1 := cols[0], cols[1], cols[2], cols[3], cols[4]
		t.Run(zone+"/"+wall, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			wt, err := time.Parse("2006-01-02T15:04:05", wall)
			if err != nil {
				t.Fatal(err)
			}
			w := Wall{Date: DateOf(wt), Hour: wt.Hour(), Minute: wt.Minute(), Second: wt.Second()}
			r := Resolve(w, loc)
			if got := r.Kind.String(); got != kind {
				t.Errorf("kind = %s, want %s", got, kind)
			}
			if got := r.Fold0.UTC().Format(time.RFC3339); got != fold0 {
				t.Errorf("fold0 = %s, want %s", got, fold0)
			}
			if got := r.Fold1.UTC().Format(time.RFC3339); got != fold1 {
				t.Errorf("fold1 = %s, want %s", got, fold1)
			}
			// The default policy yields fold0 only; skip and both behave
			// as docs/triggers.md#dst says.
			a, _, n := r.Instants(DSTPolicy{})
			if n != 1 || !a.Equal(r.Fold0) {
				t.Errorf("default instants = %d %v, want fold0", n, a)
			}
			_, _, n = r.Instants(DSTPolicy{Gap: GapSkip, Overlap: OverlapBoth})
			wantN := map[string]int{"normal": 1, "gap": 0, "overlap": 2}[kind]
			if n != wantN {
				t.Errorf("skip/both instants = %d, want %d", n, wantN)
			}
		})
	}
	if rows == 0 {
		t.Fatal("no oracle rows read")
	}
}

// TestResolveNoTimeDate pins the cases where time.Date chooses differently
// per zone (oracle/README.md, surprise 4).
func TestResolveNoTimeDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		zone  string
		wall  Wall
		start string // Resolution.Start: the transition for a gap
	}{
		{name: "new york gap starts at transition", zone: "America/New_York", wall: Wall{Date: Date{2027, 3, 14}, Hour: 2, Minute: 30}, start: "2027-03-14T07:00:00Z"},
		{name: "santiago midnight gap", zone: "America/Santiago", wall: Wall{Date: Date{2026, 9, 6}}, start: "2026-09-06T04:00:00Z"},
		{name: "london overlap first", zone: "Europe/London", wall: Wall{Date: Date{2027, 10, 31}, Hour: 1, Minute: 30}, start: "2027-10-31T00:30:00Z"},
		{name: "lord howe half hour gap", zone: "Australia/Lord_Howe", wall: Wall{Date: Date{2026, 10, 4}, Hour: 2}, start: "2026-10-03T15:30:00Z"},
		{name: "kolkata normal", zone: "Asia/Kolkata", wall: Wall{Date: Date{2026, 11, 26}, Hour: 9}, start: "2026-11-26T03:30:00Z"},
		{name: "nil zone is utc", zone: "", wall: Wall{Date: Date{2026, 11, 26}, Hour: 9}, start: "2026-11-26T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var loc *time.Location
			if tt.zone != "" {
				var err error
				if loc, err = time.LoadLocation(tt.zone); err != nil {
					t.Fatal(err)
				}
			}
			if got := Resolve(tt.wall, loc).Start().UTC().Format(time.RFC3339); got != tt.start {
				t.Errorf("Start() = %s, want %s", got, tt.start)
			}
		})
	}
}

func TestDateDays(t *testing.T) {
	t.Parallel()
	// Compare the integer civil arithmetic with the time package over a
	// wide range, including negative day numbers and leap centuries.
	for n := -800_000; n <= 800_000; n += 37 {
		want := time.Unix(int64(n)*86400, 0).UTC()
		d := DateOfDays(n)
		if d != DateOf(want) {
			t.Fatalf("DateOfDays(%d) = %v, want %v", n, d, DateOf(want))
		}
		if d.Days() != n {
			t.Fatalf("%v.Days() = %d, want %d", d, d.Days(), n)
		}
		if d.Weekday() != want.Weekday() {
			t.Fatalf("%v.Weekday() = %v, want %v", d, d.Weekday(), want.Weekday())
		}
	}
}
