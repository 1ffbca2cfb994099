package talon

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestProgressValidate(t *testing.T) {
	pct := func(v float64) *float64 { return &v }
	tests := []struct {
		name    string
		give    Progress
		wantErr string // substring; empty: valid
	}{
		{name: "empty", give: Progress{}},
		{name: "percent", give: Progress{Percent: pct(40)}},
		{name: "bounds", give: Progress{Percent: pct(100)}},
		{name: "items done of total", give: Progress{ItemsDone: 3, ItemsTotal: 10}},
		{name: "items done, total unknown", give: Progress{ItemsDone: 3}},
		{name: "items", give: Progress{Items: []ProgressItem{{Name: "eu", State: "done"}}}},
		{name: "durations", give: Progress{Expected: Duration(20 * time.Minute), Elapsed: Duration(time.Minute)}},
		{name: "percent above", give: Progress{Percent: pct(101)}, wantErr: "percent 101: want a number from 0 to 100"},
		{name: "percent below", give: Progress{Percent: pct(-1)}, wantErr: "percent -1"},
		{name: "percent NaN", give: Progress{Percent: pct(math.NaN())}, wantErr: "percent NaN"},
		{name: "negative expected", give: Progress{Expected: Duration(-time.Second)}, wantErr: "expected -1s"},
		{name: "negative elapsed", give: Progress{Elapsed: Duration(-time.Second)}, wantErr: "elapsed -1s"},
		{name: "done above total", give: Progress{ItemsDone: 11, ItemsTotal: 10}, wantErr: "items_done 11 is more than items_total 10"},
		{name: "negative count", give: Progress{ItemsDone: -1}, wantErr: "want counts of zero or more"},
		{name: "empty item name", give: Progress{Items: []ProgressItem{{Name: "a"}, {Name: " ", State: "x"}}}, wantErr: "items[1]: name is empty"},
		{name: "long message", give: Progress{Message: strings.Repeat("m", MaxProgressMessage+1)}, wantErr: "message of"},
		{name: "too many items", give: Progress{Items: make([]ProgressItem, MaxProgressItems+1)}, wantErr: "items: want at most"},
		{name: "long state", give: Progress{Items: []ProgressItem{{Name: "a", State: strings.Repeat("s", MaxProgressName+1)}}}, wantErr: "state of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			te, ok := err.(*Error)
			if !ok || te.Code != EINVALID || !strings.Contains(te.Message, tt.wantErr) {
				t.Fatalf("Validate() = %#v, want an invalid error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseProgress(t *testing.T) {
	tests := []struct {
		give                string
		wantPct             float64
		wantDone, wantTotal int64
		wantMsg, wantErr    string
	}{
		{give: "40%", wantPct: 40},
		{give: "40", wantPct: 40},
		{give: "12.5% loading partitions", wantPct: 12.5, wantMsg: "loading partitions"},
		{give: "3/10", wantPct: 30, wantDone: 3, wantTotal: 10},
		{give: "101%", wantErr: "percent 101"},
		{give: "11/10", wantErr: "items_done 11 is more than items_total 10"},
		{give: "3/0", wantErr: "want N% or DONE/TOTAL"},
		{give: "1.5/3", wantErr: "want N% or DONE/TOTAL"},
		{give: "lots", wantErr: "want N% or DONE/TOTAL"},
		{give: "NaN%", wantErr: "percent NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			p, err := ParseProgress(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProgress(%q) = %+v, %v; want an error containing %q", tt.give, p, err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Percent == nil || *p.Percent != tt.wantPct || p.ItemsDone != tt.wantDone || p.ItemsTotal != tt.wantTotal || p.Message != tt.wantMsg {
				t.Fatalf("ParseProgress(%q) = %+v, %v", tt.give, p, err)
			}
		})
	}
}
