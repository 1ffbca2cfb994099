package calendar

import (
	"fmt"
	"time"
)

// Date is a civil date, without zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the civil date that t shows in its own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// DateOfDays returns the date n days after 1970-01-01 (n < 0: before).
func DateOfDays(n int) Date {
	// Howard Hinnant's civil_from_days: pure integer arithmetic, so the
	// trigger walk over dates costs no time.Date calls and no zone lookups.
	z := n + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return Date{y, time.Month(m), d}
}

// Days returns the number of days from 1970-01-01 to d (negative before
// it). Dates that are out of range (month 13, day 0) are normalised the way
// time.Date normalises them.
func (d Date) Days() int {
	y, m := d.Year, int(d.Month)
	if m < 1 || m > 12 {
		// Normalise rarely; the common path stays arithmetic only.
		y += (m - 1) / 12
		m = (m-1)%12 + 1
		if m < 1 {
			m += 12
			y--
		}
	}
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d.Day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// AddDays returns the date n days after d.
func (d Date) AddDays(n int) Date { return DateOfDays(d.Days() + n) }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday { return weekdayOfDays(d.Days()) }

func weekdayOfDays(n int) time.Weekday {
	// 1970-01-01 was a Thursday.
	w := (n + 4) % 7
	if w < 0 {
		w += 7
	}
	return time.Weekday(w)
}

// IsZero reports whether d is the zero Date (no date).
func (d Date) IsZero() bool { return d == Date{} }

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmp(d.Year, e.Year)
	case d.Month != e.Month:
		return cmp(int(d.Month), int(e.Month))
	default:
		return cmp(d.Day, e.Day)
	}
}

func cmp(a, b int) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// Valid reports whether d names a real day of the proleptic Gregorian
// calendar.
func (d Date) Valid() bool {
	return d.Month >= time.January && d.Month <= time.December && d.Day >= 1 && d.Day <= DaysIn(d.Year, d.Month)
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DaysIn returns the number of days of month m in year y.
func DaysIn(y int, m time.Month) int {
	switch m {
	case time.April, time.June, time.September, time.November:
		return 30
	case time.February:
		if IsLeap(y) {
			return 29
		}
		return 28
	default:
		return 31
	}
}

// IsLeap reports whether y is a Gregorian leap year.
func IsLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// Wall is a civil date and a wall-clock time, without zone: what a clock on
// the wall shows. In a zone it names zero, one or two instants (Resolve).
type Wall struct {
	Date
	Hour, Minute, Second int
}

// String formats w as YYYY-MM-DDTHH:MM:SS.
func (w Wall) String() string {
	return fmt.Sprintf("%sT%02d:%02d:%02d", w.Date, w.Hour, w.Minute, w.Second)
}

// naive returns w's seconds since the Unix epoch as if w were UTC.
func (w Wall) naive() int64 {
	return int64(w.Date.Days())*86400 + int64(w.Hour)*3600 + int64(w.Minute)*60 + int64(w.Second)
}
