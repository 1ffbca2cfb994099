// Package resource is Talon's resource tree and its all-or-nothing
// allocator. It is pure: the state store calls it inside the transaction
// that moves a run to ready, with the holds it read under its lock, so
// capacities hold at every instant even with several schedulers
// (docs/model.md#resources, docs/guarantees.md#fenced-limits).
//
// # The tree
//
// Nodes are addressed by slash-separated paths (hosts/linux/large/h01,
// db/prod/connections) and declared in the schedule's resources: section,
// each with a capacity (default 1) and free-form string attributes. A
// namespace (hosts/linux) need not be declared: it is the set of declared
// nodes below it.
//
// A node with `per: daily` (or hourly, weekly, monthly, quarterly, yearly)
// is consumable: units a run takes are not returned when the run ends but
// when the next period (UTC calendar) starts — a vendor's daily API quota,
// a monthly budget. Holds of consumable nodes carry the period key they
// were taken in.
//
// # Requests
//
// A job asks for Count units of one path:
//
//   - an exact declared path: Count units of that node;
//   - a glob (hosts/linux/*, db/*/connections): any ONE declared node the
//     glob matches, segment by segment (path.Match), with Count free units;
//   - a namespace (hosts/linux) or PREFIX/**: any one declared node below it.
//
// Where filters keep only candidates whose attributes match: ">=16",
// "<=", ">", "<" compare numbers; "=x", "!=x" and a plain "x" compare
// strings (or numbers, when both sides are numbers). A path may contain
// {{environment}}, replaced by the run's environment before matching.
//
// # Allocation
//
// Allocate takes every request of a run or nothing. Requests are served
// exact paths first, then those with fewer candidates, each from the first
// candidate in path order with enough units left; it is greedy, not a
// solver, which is right for the common shapes (one host from a pool plus
// some connections). When it cannot, the reason names the first request
// that is short, what is free and who holds it, e.g.
//
//	waiting for hosts/linux/*: 0 of 1 free (h01 held by run 812, h02 held by run 815)
//
// Fairness: runs waiting for resources are queued by priority (higher
// first) and then age (lower run id first). Before a run allocates, the
// head of the queue ahead of it (at most HeadMax waiters) reserves what it
// can of its requests from the free units, so a large request gathers
// units as small runs free them instead of being starved by a stream of
// small ones. A waiter whose request exceeds every candidate's capacity
// reserves nothing, so a run that can never start does not stop others.
//
// Ledger is the state of one store transaction: the holds and the head of
// the queue, updated as the batch allocates, releases and queues runs.
package resource
