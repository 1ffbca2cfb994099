package scheduler

import "github.com/talonhq/talon/internal/trigger"

// Trigger yields fire instants: Next returns the first one strictly
// after its argument, or the zero time when it never fires again. A job's
// run is created for the period containing each fire.
type Trigger = trigger.Trigger

// TriggerOptions are what a trigger expression is compiled against: the
// job's zone (Location, used when the expression names none), the
// schedule's business calendars, and ID, a stable name to seed anything
// random (jitter) from.
type TriggerOptions = trigger.Options

// TriggerCompileFunc compiles an expression of a registered trigger
// kind. An error of type *TriggerError carries the offset of the problem
// in the expression, which the loader turns into a file:line:col.
type TriggerCompileFunc = trigger.CompileFunc

// TriggerError is a problem in a trigger expression, at a byte offset,
// with an optional hint.
type TriggerError = trigger.Error

// RegisterTrigger makes a trigger kind available to schedules, in every
// Scheduler of the program: a trigger written {kind: KIND, schedule:
// EXPR} (talon.TriggerSpec{Kind: KIND, Schedule: EXPR} in Go) is
// compiled by f. The built-in kind, "time", is cron, @ descriptors and
// Talon's English form. Register before Open.
func RegisterTrigger(kind string, f TriggerCompileFunc) { trigger.Register(kind, f) }
