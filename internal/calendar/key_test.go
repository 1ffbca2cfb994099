package calendar

import (
	"errors"
	"testing"
	"time"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		zone    string
		wantErr string // empty: valid, and Key() must round-trip
	}{
		{name: "daily", key: "daily/2026-11-26"},
		{name: "hourly", key: "hourly/2026-11-26T05"},
		{name: "weekly", key: "weekly/2026-W48"},
		{name: "weekly 53 in a long year", key: "weekly/2026-W53"},
		{name: "weekly 53 in 2020", key: "weekly/2020-W53"},
		{name: "monthly", key: "monthly/2026-11"},
		{name: "quarterly", key: "quarterly/2026-Q4"},
		{name: "yearly", key: "yearly/2026"},
		{name: "oneshot", key: "oneshot/migrate-2026"},
		{name: "oneshot with colon and slash", key: "prod:oneshot/a:b/c"},
		{name: "env", key: "prod:daily/2026-11-26"},
		{name: "env with colon", key: "eu:prod:monthly/2026-11"},
		{name: "repeated hour", key: "hourly/2027-11-07T01", zone: "America/New_York"},
		{name: "lord howe gap hour has its later half", key: "hourly/2026-10-04T02", zone: "Australia/Lord_Howe"},
		{name: "month 13", key: "daily/2026-13-01", wantErr: `bad period key "daily/2026-13-01": month 13 out of range; want daily/YYYY-MM-DD`},
		{name: "day 31 of april", key: "daily/2026-04-31", wantErr: `bad period key "daily/2026-04-31": day 31 out of range for 2026-04; want daily/YYYY-MM-DD`},
		{name: "feb 29 non leap", key: "daily/2027-02-29", wantErr: `bad period key "daily/2027-02-29": day 29 out of range for 2027-02; want daily/YYYY-MM-DD`},
		{name: "short year", key: "daily/26-11-26", wantErr: `bad period key "daily/26-11-26": want 4 digits at offset 0; want daily/YYYY-MM-DD`},
		{name: "trailing", key: "daily/2026-11-26x", wantErr: `bad period key "daily/2026-11-26x": unexpected "x" after the value; want daily/YYYY-MM-DD`},
		{name: "week 53 in a short year", key: "weekly/2027-W53", wantErr: `bad period key "weekly/2027-W53": week 53 out of range: 2027 has 52 ISO weeks; want weekly/YYYY-Www`},
		{name: "week 0", key: "weekly/2027-W00", wantErr: `bad period key "weekly/2027-W00": week 0 out of range; want weekly/YYYY-Www`},
		{name: "quarter 5", key: "quarterly/2026-Q5", wantErr: `bad period key "quarterly/2026-Q5": quarter 5 out of range; want quarterly/YYYY-Qn`},
		{name: "lowercase q", key: "quarterly/2026-q4", wantErr: `bad period key "quarterly/2026-q4": want "-Q" at offset 4; want quarterly/YYYY-Qn`},
		{name: "hour 24", key: "hourly/2026-11-26T24", wantErr: `bad period key "hourly/2026-11-26T24": hour 24 out of range; want hourly/YYYY-MM-DDTHH`},
		{name: "gap hour", key: "hourly/2027-03-14T02", zone: "America/New_York", wantErr: `bad period key "hourly/2027-03-14T02": 2027-03-14T02 does not exist in America/New_York (the clocks skip it); want hourly/YYYY-MM-DDTHH`},
		{name: "unknown type", key: "Daily/2026-11-26", wantErr: `bad period key "Daily/2026-11-26": unknown period type "Daily" (did you mean "daily"?); want one of hourly, daily, weekly, monthly, quarterly, yearly, oneshot`},
		{name: "no slash", key: "2026-11-26", wantErr: `bad period key "2026-11-26": no "/"; want [ENV:]TYPE/VALUE, such as daily/2026-11-26`},
		{name: "empty env", key: ":daily/2026-11-26", wantErr: `bad period key ":daily/2026-11-26": empty environment before ":"; want ENV:TYPE/VALUE`},
		{name: "empty oneshot", key: "oneshot/", wantErr: `bad period key "oneshot/": empty name; want oneshot/NAME`},
		{name: "year zero", key: "yearly/0000", wantErr: `bad period key "yearly/0000": year 0000 out of range; want yearly/YYYY`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			zone := tt.zone
			if zone == "" {
				zone = "Europe/London"
			}
			loc := mustLoad(t, zone)
			p, err := ParseKey(tt.key, loc)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseKey(%q) = %+v, want error", tt.key, p)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("err = %s\nwant  %s", err, tt.wantErr)
				}
				if !errors.Is(err, ErrBadKey) {
					t.Errorf("err does not wrap ErrBadKey")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Key(); got != tt.key {
				t.Errorf("Key() = %q, want %q", got, tt.key)
			}
		})
	}
}

func FuzzPeriodKey(f *testing.F) {
	for _, s := range []string{
		"daily/2026-11-26", "hourly/2027-03-14T02", "hourly/2027-11-07T01", "weekly/2020-W53", "weekly/2027-W53",
		"monthly/2026-11", "quarterly/2026-Q4", "yearly/2026", "oneshot/x", "prod:daily/2026-11-26",
		"daily/2026-13-01", ":daily/1", "a:b:c/d", "hourly/2026-10-04T02", "daily/9999-12-31", "weekly/0001-W01",
	} {
		f.Add(s)
	}
	zones := []*time.Location{mustLoad(f, "UTC"), mustLoad(f, "America/New_York"), mustLoad(f, "Australia/Lord_Howe"), mustLoad(f, "America/Santiago")}
	f.Fuzz(func(t *testing.T, key string) {
		for _, loc := range zones {
			p, err := ParseKey(key, loc)
			if err != nil {
				if !errors.Is(err, ErrBadKey) {
					t.Fatalf("ParseKey(%q): error %v does not wrap ErrBadKey", key, err)
				}
				continue
			}
			k := p.Key()
			if k != key {
				t.Fatalf("ParseKey(%q).Key() = %q", key, k)
			}
			q, err := ParseKey(k, loc)
			if err != nil {
				t.Fatalf("ParseKey(%q) round trip: %v", k, err)
			}
			if !q.Start.Equal(p.Start) || !q.End.Equal(p.End) || q.Name != p.Name || q.Environment != p.Environment || q.Type != p.Type {
				t.Fatalf("round trip of %q differs: %+v vs %+v", key, p, q)
			}
			if p.Start.After(p.End) {
				t.Fatalf("%q: start %s after end %s", key, p.Start, p.End)
			}
		}
	})
}
