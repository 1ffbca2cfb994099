//go:build chaos

package chaos

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// execution is what the history file says of one start of a run: one
// top process and everything below it.
type execution struct {
	run     int64
	attempt int
	job     string
	shape   string
	top     int // pid of the process Talon started
	start   time.Time
	last    time.Time // the last line of any of its processes
	end     time.Time // zero without an end line
	status  string    // the end line's status: an exit code or TERM
	pids    map[int]bool
	final   map[int]bool // pids that wrote their last line (D or E)
	above   []int        // pids above the top process, parent first
}

// endedCleanly reports whether the top process exited by itself with a
// status (not SIGTERM, not SIGKILL): Talon should have recorded that
// status.
func (x *execution) endedCleanly() bool {
	if x.end.IsZero() || x.status == "TERM" {
		return false
	}
	_, err := strconv.Atoi(x.status)
	return err == nil
}

// aliveUntil is the last instant the execution was certainly alive, and
// the last instant it may have been: a process that was SIGKILLed wrote
// no last line and may have lived up to a tick past its last one.
func (x *execution) aliveUntil(tick time.Duration) (certain, possible time.Time) {
	for pid := range x.pids {
		if !x.final[pid] {
			return x.last, x.last.Add(tick)
		}
	}
	return x.last, x.last
}

type historyData struct {
	execs   []*execution           // in start order
	byRun   map[int64][]*execution // a run started more than once has several
	lines   int
	bad     []string // lines that do not parse
	pids    map[int]bool
	lastAny time.Time
}

// readHistory parses the history file. Lines of a run whose start line is
// missing (a process killed between fork and its first write cannot
// write one, but then it writes nothing) are reported as bad.
func readHistory(path string) (*historyData, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return &historyData{byRun: map[int64][]*execution{}, pids: map[int]bool{}}, nil
		}
		return nil, err
	}
	defer f.Close()
	type rec struct {
		kind    string
		run     int64
		attempt int
		top     int
		pid     int
		at      time.Time
		rest    []string
	}
	var recs []rec
	h := &historyData{byRun: map[int64][]*execution{}, pids: map[int]bool{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		h.lines++
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 {
			h.bad = append(h.bad, sc.Text())
			continue
		}
		run, err1 := strconv.ParseInt(fs[1], 10, 64)
		att, err2 := strconv.Atoi(fs[2])
		top, err3 := strconv.Atoi(fs[3])
		pid, err4 := strconv.Atoi(fs[4])
		ns, err5 := strconv.ParseInt(fs[5], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
			h.bad = append(h.bad, sc.Text())
			continue
		}
		r := rec{kind: fs[0], run: run, attempt: att, top: top, pid: pid, at: time.Unix(0, ns), rest: fs[6:]}
		recs = append(recs, r)
		h.pids[pid] = true
		if r.at.After(h.lastAny) {
			h.lastAny = r.at
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].at.Before(recs[j].at) })
	// An execution is keyed by its run and its top pid.
	type key struct {
		run int64
		top int
	}
	byKey := map[key]*execution{}
	get := func(r rec) *execution {
		k := key{r.run, r.top}
		x := byKey[k]
		if x == nil {
			x = &execution{run: r.run, attempt: r.attempt, top: r.top, start: r.at, pids: map[int]bool{}, final: map[int]bool{}}
			byKey[k] = x
		}
		return x
	}
	for _, r := range recs {
		x := get(r)
		x.pids[r.pid] = true
		if r.at.After(x.last) {
			x.last = r.at
		}
		switch r.kind {
		case "S":
			x.start = r.at
			if len(r.rest) >= 2 {
				x.job, x.shape = r.rest[0], r.rest[1]
			}
			if len(r.rest) >= 3 {
				for _, a := range strings.Split(r.rest[2], ",") {
					if n, err := strconv.Atoi(a); err == nil {
						x.above = append(x.above, n)
					}
				}
			}
		case "E":
			x.end = r.at
			x.final[r.pid] = true
			if len(r.rest) >= 1 {
				x.status = r.rest[0]
			}
		case "D":
			x.final[r.pid] = true
		case "T":
		default:
			h.bad = append(h.bad, fmt.Sprintf("%s %d (unknown kind)", r.kind, r.run))
		}
	}
	for _, x := range byKey {
		h.execs = append(h.execs, x)
	}
	sort.Slice(h.execs, func(i, j int) bool { return h.execs[i].start.Before(h.execs[j].start) })
	for _, x := range h.execs {
		h.byRun[x.run] = append(h.byRun[x.run], x)
	}
	return h, nil
}
