package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
)

// plan is a schedule prepared for the engine: reverse dependencies,
// completion triggers and fences, computed once per (re)load.
type plan struct {
	s    *schedule.Schedule
	jobs map[string]*schedule.Job
	// dependents[j] lists the jobs whose blocked runs may change answer
	// when a run of j changes: j itself (max_running, max_blocked,
	// once_per_period) and every job with an `after` constraint on j.
	deps map[string][]string
	// downstream[j] lists completion triggers fired by a success of j.
	downstream map[string][]completionTrigger
	fences     map[string]*store.Fence
	minPoll    time.Duration
	// tree is the schedule's resources; resJobs lists the jobs that ask
	// for some, whose blocked runs are re-checked when any run holding
	// resources ends (it may have freed, or stopped reserving, units).
	tree    *resource.Tree
	resJobs []string
	isRes   map[string]bool
	// slow marks the jobs with a slow constraint (a sensor), whose runs
	// are checked off the loop goroutine.
	slow map[string]bool
	// artifactJobs lists the jobs with an artifact constraint, whose
	// blocked runs are checked when an artifact is added; declares says
	// some job declares the artifacts its runs produce.
	artifactJobs []string
	declares     bool
}

type completionTrigger struct {
	job     *schedule.Job
	trigger talon.TriggerSpec
}

// Optional interfaces of compiled constraints, satisfied by the built-ins.
type (
	// upstreamer is a constraint that waits for other jobs (after).
	upstreamer interface{ Upstreams() []string }
	// fencer is a limit decided inside the store's transaction.
	fencer interface {
		Fence() (maxRunning int, oncePerPeriod bool)
	}
)

func compile(s *schedule.Schedule) (*plan, error) {
	p := &plan{
		s:          s,
		jobs:       make(map[string]*schedule.Job, len(s.Jobs)),
		deps:       map[string][]string{},
		downstream: map[string][]completionTrigger{},
		fences:     map[string]*store.Fence{},
		minPoll:    time.Minute,
		tree:       s.Tree(),
		isRes:      map[string]bool{},
		slow:       map[string]bool{},
	}
	for _, j := range s.Jobs {
		p.jobs[j.Name] = j
		waits := false
		for _, c := range j.Checks {
			if sl, ok := c.(constraint.Slow); ok && sl.Slow() {
				p.slow[j.Name] = true
			}
			if w, ok := c.(constraint.ArtifactWaiter); ok && w.WaitsForArtifacts() {
				waits = true
			}
		}
		if waits {
			p.artifactJobs = append(p.artifactJobs, j.Name)
		}
		p.declares = p.declares || len(j.Declared) > 0
		if len(j.Requests) > 0 {
			p.resJobs = append(p.resJobs, j.Name)
			p.isRes[j.Name] = true
		}
	}
	addDep := func(upstream, job string) {
		// Pairs for job are added while job's turn lasts, so a repeat is
		// the list's last entry; searching the whole list was quadratic
		// when many jobs wait for one.
		if l := p.deps[upstream]; len(l) > 0 && l[len(l)-1] == job {
			return
		}
		p.deps[upstream] = append(p.deps[upstream], job)
	}
	for _, j := range s.Jobs {
		addDep(j.Name, j.Name)
		if j.Poll < p.minPoll {
			p.minPoll = j.Poll
		}
		for _, c := range j.Checks {
			if u, ok := c.(upstreamer); ok {
				for _, up := range u.Upstreams() {
					addDep(up, j.Name)
				}
			}
			if f, ok := c.(fencer); ok {
				mr, once := f.Fence()
				fe := p.fences[j.Name]
				if fe == nil {
					fe = &store.Fence{}
					p.fences[j.Name] = fe
				}
				if mr > 0 && (fe.MaxRunning == 0 || mr < fe.MaxRunning) {
					fe.MaxRunning = mr
				}
				fe.OncePerPeriod = fe.OncePerPeriod || once
			}
		}
		for _, t := range j.Triggers {
			if t.After != "" {
				if p.jobs[t.After] == nil {
					return nil, fmt.Errorf("job %q: trigger after unknown job %q", j.Name, t.After)
				}
				p.downstream[t.After] = append(p.downstream[t.After], completionTrigger{job: j, trigger: t})
			}
		}
	}
	return p, nil
}

func (p *plan) dependents(job string) []string { return p.deps[job] }

// affects reports whether the end of a run of job (its counts, what it
// releases) may change the decision on a blocked run of one of jobs: the
// run waits on job, or holds to a limit of its own job's runs (every job
// is its own dependent, but one without constraints passes whatever its
// runs do), or both jobs queue for resources. An unknown job may affect
// anything.
func (p *plan) affects(job string, jobs map[string]bool) bool {
	j := p.jobs[job]
	if j == nil {
		return true
	}
	if p.isRes[job] && slices.ContainsFunc(p.resJobs, func(o string) bool { return jobs[o] }) {
		return true
	}
	return slices.ContainsFunc(p.deps[job], func(o string) bool { return jobs[o] && (o != job || len(j.Checks) > 0) })
}

// freed lists the jobs to re-check when a run of job leaves the
// resource queue or releases what it held.
func (p *plan) freed(job string) []string {
	if !p.isRes[job] {
		return nil
	}
	return p.resJobs
}

// allocation is what a run of j asks of the tree, {{environment}}
// resolved with the run's environment; nil when it asks for nothing.
func (p *plan) allocation(j *schedule.Job, env string) *store.Allocation {
	reqs := j.Wants(env)
	if reqs == nil {
		return nil
	}
	return &store.Allocation{Tree: p.tree, Requests: reqs, Priority: j.Priority}
}

// periodAt returns the period of job j that contains t, shifted by the
// trigger's offset.
func periodAt(j *schedule.Job, t time.Time, offset talon.PeriodOffset) (talon.Period, error) {
	return j.Periods().At(t, offset)
}
