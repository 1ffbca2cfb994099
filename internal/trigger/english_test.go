package trigger

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// testUS is the TEST-US calendar of oracle/README.md: weekends Sat/Sun and
// these holidays.
func testUS(t testing.TB) *calendar.Calendar {
	t.Helper()
	c := &calendar.Calendar{Name: "TEST-US"}
	for _, s := range []string{"2026-11-26", "2026-12-25", "2027-01-01", "2027-01-18", "2027-02-15", "2027-05-31", "2027-07-05", "2027-09-06", "2027-11-25", "2027-12-24", "2027-12-31"} {
		d, err := calendar.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		c.Holidays = append(c.Holidays, d)
	}
	return c
}

// TestEnglishOracle checks every row of testdata/english.tsv (a copy of
// oracle/english.tsv): Next iterated from the base gives next1..next10.
func TestEnglishOracle(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/english.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	rows := 0
	cals := map[string]*calendar.Calendar{"TEST-US": testUS(t)}
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 7 {
			t.Fatalf("short row %q", sc.Text())
		}
		rows++
		expr, zone, base := c[0], c[1], c[2]
		var want []string
		for _, v := range c[6:] {
			if v != "" {
				want = append(want, v)
			}
		}
		t.Run(expr+"@"+base, func(t *testing.T) {
			t.Parallel()
			// The row's zone is the job's zone; the expression may also
			// name it.
			tr, err := Parse(expr, Options{Location: mustLoad(t, zone), Calendars: cals})
			if err != nil {
				t.Fatalf("Parse(%q): %v", expr, err)
			}
			got := fires(t, tr, mustTime(t, base), len(want))
			if !slices.Equal(got, want) {
				t.Errorf("got  %v\nwant %v\n%s", got, want, tr.(*Spec).Explain())
			}
		})
	}
	if rows == 0 {
		t.Fatal("no rows")
	}
}

// TestSeedExplain checks that the seed reads as three rules with their
// windows, and that it fires 30 times a day.
func TestSeedExplain(t *testing.T) {
	t.Parallel()
	s, err := ParseSpec("every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := s.Explain()
	for _, want := range []string{
		"rule 1: every day, every 15 minutes in [07:00, 10:00): 07:00, 07:15, …, 09:45 (12 a day)",
		"rule 2: every day, every hour in [10:00, 16:00): 10:00, 11:00, …, 15:00 (6 a day)",
		"rule 3: every day, every 5 minutes in [16:00, 17:00): 16:00, 16:05, …, 16:55 (12 a day)",
	} {
		if !strings.Contains(ex, want) {
			t.Errorf("Explain() lacks %q:\n%s", want, ex)
		}
	}
	if strings.Contains(ex, "rule 4") {
		t.Errorf("Explain() has more than three rules:\n%s", ex)
	}
	got := fires(t, s, mustTime(t, "2026-11-27T00:00:00Z"), 31)
	if len(got) != 31 || got[29] != "2026-11-27T16:55:00Z" || got[30] != "2026-11-28T07:00:00Z" {
		t.Errorf("fires: %d, last of the day %v", len(got), got[28:])
	}
	if c := s.String(); c != "every 15 minutes from 07:00 until 10:00; every hour from 10:00 until 16:00; every 5 minutes from 16:00 until 17:00" {
		t.Errorf("String() = %q", c)
	}
	_ = time.UTC
}
