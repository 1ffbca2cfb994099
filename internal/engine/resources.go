package engine

import (
	"context"
	"slices"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/resource"
)

// Resources returns the loaded schedule's resource tree with what each
// node has used now (by whom), the queued runs it could serve, and for a
// consumable node the units used in each period.
func (e *Engine) Resources(ctx context.Context) (api.ResourcesView, error) {
	p := e.sched.Load()
	holds, err := e.st.Holds(ctx, nil)
	if err != nil {
		return api.ResourcesView{}, userErr(err, "resources")
	}
	ws, err := e.st.Waiters(ctx)
	if err != nil {
		return api.ResourcesView{}, userErr(err, "resources")
	}
	led := resource.NewLedger(holds, nil, e.now())
	waiting := map[string][]int64{}
	for _, w := range ws {
		seen := map[string]bool{}
		for _, r := range w.Requests {
			for _, n := range r.Candidates(p.tree) {
				if !seen[n.Path] {
					seen[n.Path] = true
					waiting[n.Path] = append(waiting[n.Path], w.RunID)
				}
			}
		}
	}
	periods := map[string]map[string]int{}
	var undeclared []string
	for _, h := range holds {
		if _, ok := p.tree.Node(h.Path); !ok && !slices.Contains(undeclared, h.Path) {
			undeclared = append(undeclared, h.Path)
		}
		if h.Period != "" {
			if periods[h.Path] == nil {
				periods[h.Path] = map[string]int{}
			}
			periods[h.Path][h.Period] += h.Units
		}
	}
	v := api.ResourcesView{Waiters: ws}
	info := func(n *resource.Node, declared bool) api.ResourceInfo {
		hs := led.Counted(n)
		if hs == nil {
			hs = []resource.Hold{}
		}
		w := waiting[n.Path]
		if w == nil {
			w = []int64{}
		}
		return api.ResourceInfo{Node: *n, Declared: declared, Used: led.Used(n), Holders: hs, Waiting: w, Periods: periods[n.Path]}
	}
	for _, n := range p.tree.Nodes() {
		v.Resources = append(v.Resources, info(n, true))
	}
	slices.Sort(undeclared)
	for _, path := range undeclared {
		v.Resources = append(v.Resources, info(&resource.Node{Path: path}, false))
	}
	return v, nil
}

// runResources is what run r holds (or, once finished, held) and wants,
// or nil when its job asks for nothing and it holds nothing.
func (e *Engine) runResources(ctx context.Context, r talon.Run) (*api.RunResources, error) {
	p := e.sched.Load()
	id, job, env := r.ID, r.Job, r.Environment
	holds := func(ctx context.Context, id int64) ([]resource.Hold, error) { return e.st.Holds(ctx, []int64{id}) }
	if r.State.Terminal() {
		// Its holds were released when it ended; its record keeps them.
		holds = e.st.Held
	}
	held, err := holds(ctx, id)
	if err != nil {
		return nil, err
	}
	j := p.jobs[job]
	if len(held) == 0 && (j == nil || len(j.Requests) == 0) {
		return nil, nil
	}
	out := &api.RunResources{Held: held, Wants: []resource.Request{}}
	if out.Held == nil {
		out.Held = []resource.Hold{}
	}
	if a := p.allocation(j, env); j != nil && a != nil {
		out.Wants = a.Requests
	}
	ws, err := e.st.Waiters(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if w.RunID == id {
			out.Waiting = w.Reason
		}
	}
	return out, nil
}
