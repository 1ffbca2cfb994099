package schedule

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/talonhq/talon"
	"gopkg.in/yaml.v3"
)

// EncodeJob writes a job built in Go as the schedule YAML that declares
// it, so that a program's jobs go through the one loader the files do:
// the same defaults, the same checks, the same compiled triggers and
// constraints. It is the loader's inverse for the keys a talon.Job holds;
// what only YAML can say (resource where filters, calendars, resource
// declarations) belongs in a file loaded with it.
//
// Fields the loader computes are refused rather than dropped: a
// trigger's ID, and a Location that disagrees with Timezone. Zero values
// are left out, so the loader's defaults apply (period daily, zone UTC,
// executor local, poll 1m, catch-up latest).
func EncodeJob(j talon.Job) ([]byte, error) {
	b := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
	b.str("description", j.Description)
	switch {
	case j.Period.Calendar != "":
		p := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
		p.str("type", string(j.Period.Type))
		p.str("calendar", j.Period.Calendar)
		b.add("period", p.n)
	default:
		b.str("period", string(j.Period.Type))
	}
	zone := j.Timezone
	if j.Location != nil {
		switch name := j.Location.String(); {
		case zone == "":
			zone = name
		case zone != name:
			return nil, fmt.Errorf("job %q: Location %s and Timezone %s disagree: set one of them", j.Name, name, zone)
		}
	}
	b.str("timezone", zone)
	b.str("environment", j.Environment)
	b.str("group", j.Group)
	b.str("executor", j.Executor)
	// The loader sets Function to the command's first word for the
	// older form; a job read back that way keeps only its command.
	if j.Function != "" && (len(j.Command) == 0 || j.Command[0] != j.Function) {
		b.str("function", j.Function)
	}
	if len(j.Command) > 0 {
		if err := b.value("command", j.Command); err != nil {
			return nil, fmt.Errorf("job %q: command: %w", j.Name, err)
		}
	}
	if len(j.Env) > 0 {
		env := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
		for _, k := range slices.Sorted(maps.Keys(j.Env)) {
			v := j.Env[k]
			switch {
			case v.File != "" || v.Env != "":
				src := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
				src.str("file", v.File)
				src.str("env", v.Env)
				if v.Value != "" {
					return nil, fmt.Errorf("job %q: env %s: a value and a secret's source: set one of them", j.Name, k)
				}
				env.add(k, src.n)
			default:
				env.add(k, scalar(v.Value))
			}
		}
		b.add("env", env.n)
	}
	b.str("dir", j.Dir)
	if len(j.Params) > 0 {
		if err := b.value("params", j.Params); err != nil {
			return nil, fmt.Errorf("job %q: params: %w", j.Name, err)
		}
	}
	b.duration("poll", j.Poll)
	b.duration("timeout", j.Timeout)
	if r := j.Retries; r != (talon.RetryPolicy{}) {
		m := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
		m.add("max", number(r.Max))
		m.duration("delay", r.Delay)
		if r.Timeouts {
			m.add("timeouts", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		b.add("retries", m.n)
	}
	b.str("catchup", string(j.Catchup))
	b.duration("catchup_window", j.CatchupWindow)
	if j.Priority != 0 {
		b.add("priority", number(j.Priority))
	}
	if len(j.Triggers) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i, t := range j.Triggers {
			if t.ID != "" {
				return nil, fmt.Errorf("job %q: Triggers[%d]: ID %q is the loader's to set: leave it empty", j.Name, i, t.ID)
			}
			m := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
			if t.Kind != "" && t.Kind != "time" {
				m.str("kind", t.Kind)
			}
			m.str("schedule", t.Schedule)
			m.str("after", t.After)
			if t.Period != talon.PeriodSame {
				m.str("period", string(t.Period))
			}
			seq.Content = append(seq.Content, m.n)
		}
		b.add("triggers", seq)
	}
	if len(j.Constraints) > 0 {
		// A mapping keeps the order written, which is the order the
		// constraints are checked and reported in.
		m := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
		for _, c := range j.Constraints {
			if err := m.value(c.Kind, c.Value); err != nil {
				return nil, fmt.Errorf("job %q: constraint %s: %w", j.Name, c.Kind, err)
			}
		}
		b.add("constraints", m.n)
	}
	if len(j.Resources) > 0 {
		m := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
		for _, k := range slices.Sorted(maps.Keys(j.Resources)) {
			m.add(k, number(j.Resources[k]))
		}
		b.add("resources", m.n)
	}
	if len(j.Artifacts) > 0 {
		m := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
		for _, k := range slices.Sorted(maps.Keys(j.Artifacts)) {
			m.str(k, j.Artifacts[k])
		}
		b.add("artifacts", m.n)
	}
	if len(b.n.Content) == 0 {
		// A job with nothing set is an empty mapping, not a null.
		b.n.Style = yaml.FlowStyle
	}
	jobs := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
	jobs.add(j.Name, b.n)
	top := &mapping{n: &yaml.Node{Kind: yaml.MappingNode}}
	top.add("jobs", jobs.n)
	out, err := yaml.Marshal(top.n)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", j.Name, err)
	}
	return out, nil
}

// mapping builds a YAML mapping in the order keys are added.
type mapping struct{ n *yaml.Node }

func (m *mapping) add(key string, v *yaml.Node) {
	m.n.Content = append(m.n.Content, scalar(key), v)
}

// str adds key unless v is empty (the loader's default applies).
func (m *mapping) str(key, v string) {
	if v != "" {
		m.add(key, scalar(v))
	}
}

// duration adds key unless d is zero, in Go's notation, which the loader
// reads.
func (m *mapping) duration(key string, d time.Duration) {
	if d != 0 {
		m.add(key, scalar(d.String()))
	}
}

// value adds key with v encoded as YAML (plain Go values: strings,
// numbers, booleans, slices and maps of them).
func (m *mapping) value(key string, v any) error {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return err
	}
	m.add(key, &n)
	return nil
}

// scalar is a string node, quoted so that YAML reads it back as the same
// string ("on", "1e3" and "" included).
func scalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

func number(v int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
}
