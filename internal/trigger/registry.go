package trigger

import (
	"fmt"
	"sort"
	"sync"
)

// CompileFunc compiles an expression of a registered trigger kind.
type CompileFunc func(expr string, opt Options) (Trigger, error)

var (
	kindsMu sync.RWMutex
	kinds   = map[string]CompileFunc{}
)

// Register makes a trigger kind available to schedules, which name it with
// `kind:` next to `schedule:` (e.g. a program embedding Talon adds
// "sunrise"). The built-in kind, used when a trigger names none, is
// "time": cron, @ descriptors and the English form.
func Register(kind string, f CompileFunc) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	kinds[kind] = f
}

// Compile compiles expr as a trigger of the given kind; "" and "time"
// mean Parse.
func Compile(kind, expr string, opt Options) (Trigger, error) {
	if kind == "" || kind == "time" {
		return Parse(expr, opt)
	}
	kindsMu.RLock()
	f := kinds[kind]
	kindsMu.RUnlock()
	if f == nil {
		return nil, &Error{Msg: fmt.Sprintf("unknown trigger kind %s (known: %v)", quote(kind), Kinds())}
	}
	return f(expr, opt)
}

// Kinds lists the trigger kinds, the built-in "time" first.
func Kinds() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return append([]string{"time"}, out...)
}
