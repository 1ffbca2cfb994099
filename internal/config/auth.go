package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/suggest"
	"gopkg.in/yaml.v3"
)

// AuthSource is one entry of auth: a registered source's name and its
// settings, which that source's auth.Factory decodes.
type AuthSource struct {
	Name string
	// Pos is where the source's name is written.
	Pos  schedule.Pos
	node *yaml.Node
	file string
}

// auth reads the auth: mapping: its keys are registered source names,
// kept in the order written (the order sources are asked in).
func (r *reader) auth(n *yaml.Node) {
	dn := deref(n)
	if dn.Kind != yaml.MappingNode {
		r.errf(n, "", "auth: want a mapping of sources (%s), not a %s", strings.Join(auth.Names(), ", "), kindName(dn))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(dn.Content); i += 2 {
		k, v := deref(dn.Content[i]), dn.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			r.errf(k, "", "auth: want a source name as key, not a %s", kindName(k))
			continue
		}
		if line, ok := seen[k.Value]; ok {
			r.errf(k, "", "auth: source %s repeated (first at line %d)", suggest.Quote(k.Value), line)
			continue
		}
		seen[k.Value] = k.Line
		if _, ok := auth.Lookup(k.Value); !ok {
			r.errf(k, didYouMean(k.Value, auth.Names(), "want one of "+strings.Join(auth.Names(), ", ")), "auth: unknown source %s", suggest.Quote(k.Value))
			continue
		}
		if isNull(v) {
			r.errf(k, "", "auth: %s: no settings", k.Value)
			continue
		}
		r.c.Auth = append(r.c.Auth, AuthSource{Name: k.Value, Pos: r.pos(k), node: v, file: r.file})
	}
	if len(dn.Content) == 0 {
		r.errf(n, "add tokens:, token_file: or jwt:, or remove auth:", "auth: no source")
	}
}

// AuthSources builds the sources of auth:, in the order written, each by
// its registered auth.Factory. Factories read the files they name (a
// token file, a JWKS file) now; problems are a schedule.ErrorList, each
// at the place in the config it is about.
func (c *Config) AuthSources() ([]auth.Source, error) {
	var out []auth.Source
	var errs schedule.ErrorList
	dir := ""
	if c.File != "" {
		dir = c.Resolve(".")
	}
	for _, a := range c.Auth {
		f, ok := auth.Lookup(a.Name)
		if !ok {
			errs = append(errs, &schedule.Error{Pos: a.Pos, Msg: fmt.Sprintf("auth: unknown source %s", suggest.Quote(a.Name))})
			continue
		}
		var decodeErrs schedule.ErrorList
		decode := func(v any) error {
			decodeErrs = strictDecode(a.file, "auth: "+a.Name+": ", a.node, v)
			if len(decodeErrs) > 0 {
				return decodeErrs
			}
			return nil
		}
		src, err := f(decode, dir)
		switch {
		case len(decodeErrs) > 0:
			errs = append(errs, decodeErrs...)
		case err != nil:
			errs = append(errs, &schedule.Error{Pos: a.Pos, Msg: fmt.Sprintf("auth: %s: %v", a.Name, err)})
		default:
			out = append(out, src)
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return out, nil
}

// strictDecode decodes n into v, refusing keys v has no field for (yaml.v3
// has no strict mode for a Node) and reporting each problem where it is.
func strictDecode(file, where string, n *yaml.Node, v any) schedule.ErrorList {
	var errs schedule.ErrorList
	pos := func(n *yaml.Node) schedule.Pos { return schedule.Pos{File: file, Line: n.Line, Col: max(n.Column, 1)} }
	var check func(n *yaml.Node, t reflect.Type, path string)
	check = func(n *yaml.Node, t reflect.Type, path string) {
		n = deref(n)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
			fields := map[string]reflect.Type{}
			var names []string
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "-" {
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				fields[name] = f.Type
				names = append(names, name)
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := deref(n.Content[i])
				ft, ok := fields[k.Value]
				if !ok {
					errs = append(errs, &schedule.Error{Pos: pos(k), Msg: fmt.Sprintf("%s%sunknown key %s", where, path, suggest.Quote(k.Value)),
						Hint: didYouMean(k.Value, names, "want "+strings.Join(names, ", "))})
					continue
				}
				check(n.Content[i+1], ft, path+k.Value+": ")
			}
		case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
			for i, e := range n.Content {
				check(e, t.Elem(), fmt.Sprintf("%s[%d]: ", path, i+1))
			}
		case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				check(n.Content[i+1], t.Elem(), path+deref(n.Content[i]).Value+": ")
			}
		}
	}
	check(n, reflect.TypeOf(v), "")
	if len(errs) > 0 {
		return errs
	}
	if err := n.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return schedule.ErrorList{{Pos: pos(n), Msg: where + err.Error()}}
		}
		for _, m := range te.Errors {
			p := pos(n)
			if sm := typeErrLine.FindStringSubmatch(m); sm != nil {
				p.Line, _ = strconv.Atoi(sm[1])
				p.Col = firstCol(n, p.Line)
				m = sm[2]
			}
			errs = append(errs, &schedule.Error{Pos: p, Msg: where + m})
		}
		return errs
	}
	return nil
}

var typeErrLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// firstCol is the column of the first node of n's tree on line, 1 when
// there is none.
func firstCol(n *yaml.Node, line int) int {
	best := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Line == line && (best == 0 || n.Column < best) {
			best = n.Column
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return max(best, 1)
}
