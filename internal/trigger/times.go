package trigger

// listTimes is a list of wall times: "at 09:00,12:00 and 17:00". secs is
// sorted and free of duplicates.
type listTimes struct {
	secs []int64
}

func (l *listTimes) next(x int64) (int64, bool) {
	for _, s := range l.secs {
		if s >= x {
			return s, true
		}
	}
	return 0, false
}

// stepTimes is a cadence in a window: a, a+step, a+2·step, … while inside
// [a, b) (or [a, b] when closed). Steps are anchored at the window start
// and counted in wall-clock seconds (docs/triggers.md#cadences-and-windows). A window that
// crosses midnight has b > 86400.
type stepTimes struct {
	a, b, step int64
	closed     bool
}

func (t *stepTimes) next(x int64) (int64, bool) {
	v := t.a
	if x > t.a {
		v = t.a + (x-t.a+t.step-1)/t.step*t.step
	}
	if v < t.b || t.closed && v == t.b {
		return v, true
	}
	return 0, false
}

// count returns how many wall times the window holds.
func (t *stepTimes) count() int64 {
	n := (t.b-t.a)/t.step + 1
	if !t.closed && t.a+(n-1)*t.step >= t.b {
		n--
	}
	return n
}
