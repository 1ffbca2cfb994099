package trigger

import (
	"bufio"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// oracleRow is one row of testdata/cron.tsv (a copy of
// oracle/cron.tsv): robfig/cron v3.0.1's next ten fires.
type oracleRow struct {
	expr, zone, base string
	next             []string // RFC 3339 UTC, or one "ERROR: …"
}

func (r oracleRow) key() string { return r.expr + "|" + r.zone + "|" + r.base }

func readOracle(t *testing.T, path string) []oracleRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []oracleRow
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 3 {
			t.Fatalf("short row %q", sc.Text())
		}
		r := oracleRow{expr: c[0], zone: c[1], base: c[2]}
		for _, v := range c[3:] {
			if v != "" {
				r.next = append(r.next, v)
			}
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no rows", path)
	}
	return rows
}

// dstEdits are oracle/README.md's documented DST differences: robfig
// skips a wall time in a spring gap and fires a wall time in an autumn
// overlap twice; Talon's default (shift, overlap first) fires the gap time
// at its fold-0 instant (oracle/dst-resolve.tsv) and the overlap time once.
// Talon's fires are the oracle's, minus drop, plus add.
var dstEdits = map[string]struct{ drop, add []string }{
	"CRON_TZ=America/New_York 30 2 * * *|UTC|2027-03-12T12:00:00Z": {add: []string{"2027-03-14T07:30:00Z"}},  // 02:30 → 03:30 EDT
	"0 2 * * *|America/New_York|2027-03-12T12:00:00Z":              {add: []string{"2027-03-14T07:00:00Z"}},  // 02:00 → 03:00 EDT
	"0 1 * * *|America/New_York|2027-11-05T12:00:00Z":              {drop: []string{"2027-11-07T06:00:00Z"}}, // 01:00 EST again
	"*/30 0-4 * * *|America/New_York|2027-11-07T04:00:00Z":         {drop: []string{"2027-11-07T06:00:00Z", "2027-11-07T06:30:00Z"}},
	"*/30 0-4 * * *|America/New_York|2027-11-07T06:10:00Z":         {drop: []string{"2027-11-07T06:30:00Z"}}, // base inside the repeated hour
	"30 1 * * *|Europe/London|2027-03-26T12:00:00Z":                {add: []string{"2027-03-28T01:30:00Z"}},  // 01:30 → 02:30 BST
	"*/15 0-3 * * *|Europe/London|2027-10-31T00:00:00Z":            {drop: []string{"2027-10-31T01:00:00Z", "2027-10-31T01:15:00Z", "2027-10-31T01:30:00Z", "2027-10-31T01:45:00Z"}},
	"15 2 * * *|Australia/Sydney|2026-10-02T12:00:00Z":             {add: []string{"2026-10-03T16:15:00Z"}}, // 02:15 → 03:15 AEDT
	"15 2 * * *|Australia/Lord_Howe|2026-10-02T12:00:00Z":          {add: []string{"2026-10-03T15:45:00Z"}}, // 02:15 → 02:45 (+11)
	"0 0 * * *|America/Santiago|2026-09-04T12:00:00Z":              {add: []string{"2026-09-06T04:00:00Z"}}, // midnight → 01:00 -03
	"0 */2 * * *|Africa/Cairo|2027-04-29T12:00:00Z":                {add: []string{"2027-04-29T22:00:00Z"}}, // 00:00 → 01:00 EEST
}

// quartzTalon are Talon's fires for the Quartz rows robfig rejects.
var quartzTalon = map[string][]string{
	"0 0 L * *":   {"2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z", "2027-04-30T00:00:00Z"},
	"0 0 15W * *": {"2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z", "2027-02-15T00:00:00Z", "2027-03-15T00:00:00Z", "2027-04-15T00:00:00Z", "2027-05-14T00:00:00Z", "2027-06-15T00:00:00Z", "2027-07-15T00:00:00Z", "2027-08-16T00:00:00Z"},
	"0 0 * * 1#1": {"2026-12-07T00:00:00Z", "2027-01-04T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z", "2027-04-05T00:00:00Z", "2027-05-03T00:00:00Z"},
}

func fires(t *testing.T, tr Trigger, base time.Time, n int) []string {
	t.Helper()
	var out []string
	x := base
	for range n {
		nx := tr.Next(x)
		if nx.IsZero() {
			break
		}
		if !nx.After(x) {
			t.Fatalf("Next(%s) = %s, not after it", x.Format(time.RFC3339), nx.Format(time.RFC3339))
		}
		out = append(out, nx.UTC().Format(time.RFC3339))
		x = nx
	}
	return out
}

func TestCronOracle(t *testing.T) {
	t.Parallel()
	for _, row := range readOracle(t, "testdata/cron.tsv") {
		t.Run(row.expr+"@"+row.zone+"@"+row.base, func(t *testing.T) {
			t.Parallel()
			loc := mustLoad(t, row.zone)
			base := mustTime(t, row.base)
			tr, err := Parse(row.expr, Options{Location: loc})
			switch {
			case row.expr == "0 0 30 2 *":
				// robfig silently never fires; Talon refuses at parse time.
				var pe *Error
				if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "never fires") || pe.Offset != 4 {
					t.Fatalf("err = %#v, want *Error \"never fires\" at offset 4", err)
				}
				return
			case err != nil:
				t.Fatalf("Parse: %v", err)
			}
			got := fires(t, tr, base, 10)
			if q, ok := quartzTalon[row.expr]; ok {
				if len(row.next) != 1 || !strings.HasPrefix(row.next[0], "ERROR") {
					t.Fatalf("oracle row for Quartz token is not an error: %v", row.next)
				}
				if !slices.Equal(got[:len(q)], q) {
					t.Errorf("got  %v\nwant %v", got[:len(q)], q)
				}
				return
			}
			if strings.HasPrefix(row.expr, "@every") {
				assertEpochGrid(t, row, got)
				return
			}
			want := row.next
			if e, ok := dstEdits[row.key()]; ok {
				want = slices.DeleteFunc(slices.Clone(want), func(s string) bool { return slices.Contains(e.drop, s) })
				want = append(want, e.add...)
				slices.Sort(want)
				want = want[:min(len(want), 10)]
				// With robfig's DST behaviour spelled out, Talon equals it.
				raw, err := Parse(row.expr+" dst skip overlap both", Options{Location: loc})
				if err != nil {
					t.Fatal(err)
				}
				if g := fires(t, raw, base, len(row.next)); !slices.Equal(g, row.next) {
					t.Errorf("with dst skip overlap both:\ngot  %v\nwant %v", g, row.next)
				}
			}
			if !slices.Equal(got[:min(len(got), len(want))], want) || len(got) < len(want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}

// assertEpochGrid checks Talon's @every: fires on the Unix-epoch grid, not
// the caller's base (oracle/README.md). It equals robfig only when the
// base is on the grid.
func assertEpochGrid(t *testing.T, row oracleRow, got []string) {
	t.Helper()
	d, err := time.ParseDuration(strings.TrimPrefix(row.expr, "@every "))
	if err != nil {
		t.Fatal(err)
	}
	base := mustTime(t, row.base)
	first := base.Truncate(d).Add(d) // Truncate works on the zero-time grid; d divides a day here
	for i, g := range got {
		if want := first.Add(time.Duration(i) * d).Format(time.RFC3339); g != want {
			t.Fatalf("fire %d = %s, want %s", i, g, want)
		}
	}
	onGrid := base.Unix()%int64(d/time.Second) == 0
	if equal := slices.Equal(got, row.next); equal != onGrid {
		t.Errorf("equal to robfig = %v, want %v (base on grid: %v)", equal, onGrid, onGrid)
	}
}

func mustLoad(t testing.TB, zone string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func timeParseNano(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }
