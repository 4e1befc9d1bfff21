package bicepcheck

// What an expression's value can be, as far as can be known without deploying: the literal it
// is, the object or array literal it builds, or only its kind (string, int, bool, object, array,
// null) — following parameters (their type and @allowed values), variables, loop variables over
// literal arrays, ternaries, object literals' properties, built-in functions with a fixed result
// type, module outputs (their declared type) and resources' properties (their type definition).
// Anything else is unknown, with the reason.

import (
	"fmt"
	"path/filepath"
	"strings"
)

// A Project is a set of parsed Bicep files: their modules are looked up in it.
type Project struct {
	Files  []*File
	byPath map[string]*File
	Defs   *TypeDefs // may be nil
}

// NewProject indexes files (and their type definitions, if defs is not nil).
func NewProject(files []*File, defs *TypeDefs) *Project {
	p := &Project{Files: files, byPath: map[string]*File{}, Defs: defs}
	for _, f := range files {
		p.byPath[filepath.Clean(f.Path)] = f
	}
	return p
}

// Module returns the parsed file a module declaration uses, or nil (not a local file, or not in
// the project).
func (p *Project) Module(d *Decl) *File {
	path, ok := localModule(d)
	if !ok {
		return nil
	}
	return p.byPath[filepath.Clean(path)]
}

// env is where an expression is evaluated: its file and the loop variables and lambda parameters
// in scope.
type env struct {
	file  *File
	local map[string]binding
}

// binding is a loop variable's (or lambda parameter's) value: an expression in its own env, a
// kind, or unknown.
type binding struct {
	expr    Expr
	env     *env
	kind    string // when expr is nil: int for a loop index, "" when unknown
	unknown string // why the value is not known
}

func (e *env) with(name string, b binding) *env {
	local := map[string]binding{}
	for k, v := range e.local {
		local[k] = v
	}
	local[name] = b
	return &env{file: e.file, local: local}
}

// value is one thing an expression can be.
type value struct {
	kind    string // string, int, bool, null, object, array, resource, module, or "" when unknown
	literal *string
	intLit  *int64
	obj     *ObjectExpr
	arr     *ArrayExpr
	forx    *ForExpr
	env     *env  // of obj, arr, forx
	typ     *Type // when the value is known by its type definition (a resource property)
	unknown string
	at      int // the line of the literal the value is, if it is one
}

func (v value) describe() string {
	switch {
	case v.literal != nil:
		return fmt.Sprintf("'%s'", *v.literal)
	case v.intLit != nil:
		return fmt.Sprint(*v.intLit)
	case v.kind == "":
		return "an unknown value"
	}
	return "a " + v.kind
}

func str(s string) value  { return value{kind: "string", literal: &s} }
func kind(k string) value { return value{kind: k} }
func unknown(format string, args ...any) value {
	return value{unknown: fmt.Sprintf(format, args...)}
}

const maxAlternatives = 64

type evaluator struct {
	project *Project
	active  map[Expr]bool // expressions being evaluated (cycles through variables)
}

func newEvaluator(p *Project) *evaluator {
	return &evaluator{project: p, active: map[Expr]bool{}}
}

// values returns what e can be in env.
func (ev *evaluator) values(e Expr, en *env) []value {
	if ev.active[e] {
		return []value{unknown("a cycle")}
	}
	ev.active[e] = true
	defer delete(ev.active, e)
	vs := ev.eval(e, en)
	if len(vs) > maxAlternatives {
		return []value{unknown("more than %d alternatives", maxAlternatives)}
	}
	return vs
}

func (ev *evaluator) eval(e Expr, en *env) []value {
	switch x := e.(type) {
	case *ParenExpr:
		return ev.values(x.X, en)
	case *StringExpr:
		if lit, ok := x.Literal(); ok {
			v := str(lit)
			v.at = x.At
			return []value{v}
		}
		return []value{{kind: "string", at: x.At}}
	case *IntExpr:
		v := x.Value
		return []value{{kind: "int", intLit: &v, at: x.At}}
	case *BoolExpr:
		return []value{{kind: "bool", at: x.At}}
	case *NullExpr:
		return []value{{kind: "null", at: x.At}}
	case *ObjectExpr:
		return []value{{kind: "object", obj: x, env: en, at: x.At}}
	case *ArrayExpr:
		return []value{{kind: "array", arr: x, env: en, at: x.At}}
	case *ForExpr:
		return []value{{kind: "array", forx: x, env: en}}
	case *TernaryExpr:
		return append(ev.values(x.Then, en), ev.values(x.Else, en)...)
	case *UnaryExpr:
		switch {
		case x.Postfix:
			return withoutNull(ev.values(x.X, en))
		case x.Op == "!":
			return []value{kind("bool")}
		default:
			if vs := ev.values(x.X, en); len(vs) == 1 && vs[0].intLit != nil {
				n := -*vs[0].intLit
				return []value{{kind: "int", intLit: &n}}
			}
			return []value{kind("int")}
		}
	case *BinaryExpr:
		switch x.Op {
		case "??":
			return append(withoutNull(ev.values(x.X, en)), ev.values(x.Y, en)...)
		case "+", "-", "*", "/", "%":
			return []value{kind("int")}
		}
		return []value{kind("bool")}
	case *IdentExpr:
		return ev.ident(x, en)
	case *MemberExpr:
		return ev.member(x, en)
	case *ChildExpr:
		return []value{{kind: "resource"}}
	case *IndexExpr:
		return ev.index(x, en)
	case *CallExpr:
		return ev.call(x, en)
	case *LambdaExpr:
		return []value{unknown("a lambda")}
	case *envExpr:
		return ev.values(x.x, x.env)
	}
	return []value{unknown("an expression this check does not evaluate")}
}

func withoutNull(vs []value) []value {
	var out []value
	for _, v := range vs {
		if v.kind != "null" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return vs
	}
	return out
}

func (ev *evaluator) ident(x *IdentExpr, en *env) []value {
	if b, ok := en.local[x.Name]; ok {
		switch {
		case b.expr != nil:
			return ev.values(b.expr, b.env)
		case b.kind != "":
			return []value{kind(b.kind)}
		}
		return []value{unknown("%s (%s)", x.Name, b.unknown)}
	}
	d := en.file.Symbol(x.Name)
	if d == nil {
		return []value{unknown("%s, not declared in this file", x.Name)}
	}
	switch d.Kind {
	case "param":
		return paramValues(d)
	case "var":
		return ev.values(d.Value, &env{file: en.file})
	case "resource":
		return []value{{kind: "resource"}}
	case "module":
		return []value{{kind: "module"}}
	}
	return []value{unknown("%s %s", d.Kind, d.Name)}
}

// paramValues: a param's @allowed values, or its declared kind.
func paramValues(d *Decl) []value {
	if allowed := d.Decorator("allowed"); allowed != nil && len(allowed.Args) == 1 {
		if arr, ok := allowed.Args[0].(*ArrayExpr); ok {
			var out []value
			for _, item := range arr.Items {
				switch it := item.(type) {
				case *StringExpr:
					if lit, ok := it.Literal(); ok {
						out = append(out, str(lit))
						continue
					}
				case *IntExpr:
					v := it.Value
					out = append(out, value{kind: "int", intLit: &v})
					continue
				}
				return []value{unknown("param %s's @allowed values", d.Name)}
			}
			return out
		}
	}
	if d.Type == nil {
		return []value{unknown("param %s", d.Name)}
	}
	if len(d.Type.Literals) > 0 {
		var out []value
		for _, l := range d.Type.Literals {
			out = append(out, str(l))
		}
		return out
	}
	if d.Type.Kind != "" {
		vs := []value{kind(d.Type.Kind)}
		if d.Type.Nullable {
			vs = append(vs, kind("null"))
		}
		return vs
	}
	return []value{unknown("param %s of type %s", d.Name, d.Type.Text)}
}

func (ev *evaluator) member(x *MemberExpr, en *env) []value {
	// Properties of a resource, known by its type definition.
	if t, ok, why := ev.resourcePropertyType(x, en); ok {
		if t == nil {
			return []value{unknown("%s", why)}
		}
		vs := typeValues(t)
		if x.Safe || hasSafeAccess(x.X) {
			vs = append(vs, kind("null"))
		}
		return vs
	}
	// A module's outputs, known by their declared type.
	if out, ok := ev.moduleOutput(x, en); ok {
		if out == nil || out.Type == nil || out.Type.Kind == "" {
			return []value{unknown("module output %s", x.Name)}
		}
		vs := []value{kind(out.Type.Kind)}
		if len(out.Type.Literals) > 0 {
			vs = nil
			for _, l := range out.Type.Literals {
				vs = append(vs, str(l))
			}
		}
		if hasSafeAccess(x) {
			vs = append(vs, kind("null"))
		}
		return vs
	}
	// Properties of the objects a built-in function returns.
	if path, fn := memberPath(x); fn != "" {
		if knownFunctionMembers[fn+"()."+path] {
			return []value{kind("string")}
		}
		return []value{unknown("%s().%s", fn, path)}
	}
	var out []value
	for _, base := range ev.values(x.X, en) {
		switch {
		case base.obj != nil:
			p := base.obj.Prop(x.Name)
			if p == nil {
				if x.Safe {
					out = append(out, kind("null"))
				} else {
					out = append(out, unknown("no property %s in the object of line %d", x.Name, base.obj.At))
				}
				continue
			}
			out = append(out, ev.values(p.Value, base.env)...)
		case base.kind == "null" && x.Safe:
			out = append(out, kind("null"))
		case base.unknown != "":
			out = append(out, base)
		default:
			out = append(out, unknown("property %s of %s", x.Name, base.describe()))
		}
	}
	return out
}

func isMemberOrIndex(e Expr) bool {
	switch e.(type) {
	case *MemberExpr, *IndexExpr:
		return true
	}
	return false
}

func hasSafeAccess(e Expr) bool {
	for {
		switch x := e.(type) {
		case *MemberExpr:
			if x.Safe {
				return true
			}
			e = x.X
		case *IndexExpr:
			e = x.X
		default:
			return false
		}
	}
}

// memberPath returns, for f().a.b, "a.b" and "f" (namespaces sys and az dropped).
func memberPath(x *MemberExpr) (string, string) {
	names := []string{x.Name}
	e := x.X
	for {
		switch v := e.(type) {
		case *MemberExpr:
			names = append([]string{v.Name}, names...)
			e = v.X
		case *CallExpr:
			name, ns := v.FuncName()
			if ns != nil && !isIdent(ns, "az") && !isIdent(ns, "sys") {
				return "", ""
			}
			return strings.Join(names, "."), name
		default:
			return "", ""
		}
	}
}

// knownFunctionMembers are string properties of what deployment functions return.
var knownFunctionMembers = map[string]bool{
	"tenant().tenantId": true, "tenant().displayName": true, "tenant().countryCode": true,
	"subscription().id": true, "subscription().subscriptionId": true, "subscription().tenantId": true, "subscription().displayName": true,
	"resourceGroup().id": true, "resourceGroup().name": true, "resourceGroup().type": true, "resourceGroup().location": true,
	"deployment().name":  true,
	"environment().name": true, "environment().authentication.loginEndpoint": true, "environment().authentication.audiences": false,
	"environment().resourceManager": true, "environment().portal": true, "environment().graph": true, "environment().gallery": true,
	"environment().suffixes.storage": true, "environment().suffixes.keyvaultDns": true, "environment().suffixes.sqlServerHostname": true,
}

// resourceSymbol returns the resource declaration an expression names: a resource symbol, or
// parent::child.
func (ev *evaluator) resourceSymbol(e Expr, en *env) *Decl {
	switch x := e.(type) {
	case *IdentExpr:
		if _, local := en.local[x.Name]; local {
			return nil
		}
		if d := en.file.Symbol(x.Name); d != nil && d.Kind == "resource" {
			return d
		}
	case *ChildExpr:
		parent := ev.resourceSymbol(x.X, en)
		if parent == nil {
			return nil
		}
		for _, c := range parent.Children {
			if c.Name == x.Name {
				return c
			}
		}
	case *IndexExpr: // a resource loop's element
		return ev.resourceSymbol(x.X, en)
	}
	return nil
}

// resourcePropertyType resolves r.a.b… on a resource symbol r against r's type definition. ok is
// false if x is not a property access on a resource; t is nil (and why says why) if the type is
// not known.
func (ev *evaluator) resourcePropertyType(x *MemberExpr, en *env) (t *Type, ok bool, why string) {
	names := []string{x.Name}
	e := x.X
	for done := false; !done; {
		switch m := e.(type) {
		case *MemberExpr:
			names = append([]string{m.Name}, names...)
			e = m.X
		case *IndexExpr:
			// r.a['b'] is r.a.b; r.a[i] an element of the array r.a (written "[]"). An index
			// right on the resource symbol picks an element of a resource loop.
			if ev.resourceSymbol(m.X, en) != nil && !isMemberOrIndex(m.X) {
				done = true
				break
			}
			name := "[]"
			if s, ok := m.Index.(*StringExpr); ok {
				if lit, ok := s.Literal(); ok {
					name = lit
				}
			}
			names = append([]string{name}, names...)
			e = m.X
		default:
			done = true
		}
	}
	d := ev.resourceSymbol(e, en)
	if d == nil {
		return nil, false, ""
	}
	if ev.project == nil || ev.project.Defs == nil {
		return nil, true, "no type definitions"
	}
	def := ev.project.Defs.Resource(d.FullType())
	if def == nil {
		return nil, true, "no type definition of " + d.FullType()
	}
	t = def.Body
	for _, n := range names {
		if n == "[]" && t != nil && t.Kind == "array" {
			t = t.Item
			continue
		}
		p := propOf(t, n)
		if p == nil {
			return nil, true, fmt.Sprintf("%s of %s", strings.Join(names, "."), d.FullType())
		}
		t = p.Type
	}
	return t, true, ""
}

// propOf looks a property up in an object type, a discriminated type's base, or a union's object
// members.
func propOf(t *Type, name string) *PropDef {
	if t == nil {
		return nil
	}
	if p := t.Prop(name); p != nil {
		return p
	}
	if t.Kind == "object" && t.Additional != nil {
		return &PropDef{Name: name, Type: t.Additional}
	}
	if t.Kind == "union" {
		for _, e := range t.Elements {
			if p := propOf(e, name); p != nil {
				return p
			}
		}
	}
	return nil
}

// typeValues: what a value of type t can be, for the check of an assignment.
func typeValues(t *Type) []value {
	switch t.Kind {
	case "literal":
		return []value{str(t.Value)}
	case "union":
		var out []value
		for _, e := range t.Elements {
			out = append(out, typeValues(e)...)
		}
		return out
	case "any", "function", "":
		return []value{unknown("a property of type any")}
	case "discriminated":
		return []value{{kind: "object", typ: t}}
	}
	return []value{{kind: t.Kind, typ: t}}
}

// moduleOutput resolves m.outputs.name on a module symbol m (ok false if x is not that).
func (ev *evaluator) moduleOutput(x *MemberExpr, en *env) (*Decl, bool) {
	outputs, isMember := x.X.(*MemberExpr)
	if !isMember || outputs.Name != "outputs" {
		return nil, false
	}
	base := outputs.X
	if ix, ok := base.(*IndexExpr); ok {
		base = ix.X
	}
	id, ok := base.(*IdentExpr)
	if !ok {
		return nil, false
	}
	if _, local := en.local[id.Name]; local {
		return nil, false
	}
	d := en.file.Symbol(id.Name)
	if d == nil || d.Kind != "module" {
		return nil, false
	}
	if ev.project == nil {
		return nil, true
	}
	mod := ev.project.Module(d)
	if mod == nil {
		return nil, true
	}
	return mod.Find("output", x.Name), true
}

func (ev *evaluator) index(x *IndexExpr, en *env) []value {
	idx := ev.values(x.Index, en)
	if len(idx) != 1 || idx[0].intLit == nil {
		if len(idx) == 1 && idx[0].literal != nil {
			// obj['key']
			return ev.member(&MemberExpr{At: x.At, X: x.X, Name: *idx[0].literal}, en)
		}
		return []value{unknown("an index that is not a literal")}
	}
	var out []value
	for _, base := range ev.values(x.X, en) {
		if base.arr == nil || *idx[0].intLit < 0 || int(*idx[0].intLit) >= len(base.arr.Items) {
			out = append(out, unknown("an element of %s", base.describe()))
			continue
		}
		item := base.arr.Items[*idx[0].intLit]
		if _, spread := item.(*SpreadExpr); spread {
			out = append(out, unknown("an element of an array with a spread"))
			continue
		}
		out = append(out, ev.values(item, base.env)...)
	}
	return out
}

// Built-in functions by the kind of their result.
var functionKinds = map[string]string{}

func init() {
	for kind, names := range map[string][]string{
		"string": {"guid", "uniqueString", "toLower", "toUpper", "trim", "format", "substring", "replace", "string",
			"base64", "base64ToString", "uri", "uriComponent", "uriComponentToString", "dataUri", "dataUriToString",
			"subscriptionResourceId", "resourceId", "tenantResourceId", "extensionResourceId", "managementGroupResourceId",
			"loadTextContent", "loadFileAsBase64", "newGuid", "utcNow", "padLeft", "join", "dateTimeAdd", "dateTimeFromEpoch",
			"cidrSubnet", "cidrHost"},
		"int":    {"length", "int", "indexOf", "lastIndexOf", "dateTimeToEpoch", "min", "max"},
		"bool":   {"empty", "contains", "startsWith", "endsWith", "bool", "equals", "not", "and", "or"},
		"array":  {"split", "array", "createArray", "range", "filter", "map", "sort", "flatten", "items", "intersection", "pickZones"},
		"object": {"createObject", "toObject", "shallowMerge", "parseCidr", "objectKeys"},
	} {
		for _, n := range names {
			functionKinds[n] = kind
		}
	}
	functionKinds["objectKeys"] = "array"
}

func (ev *evaluator) call(x *CallExpr, en *env) []value {
	name, on := x.FuncName()
	if on != nil && !isIdent(on, "sys") && !isIdent(on, "az") {
		return []value{unknown("%s()", name)}
	}
	switch name {
	case "union":
		return ev.union(x, en)
	case "concat", "skip", "take":
		if len(x.Args) > 0 {
			var out []value
			for _, v := range ev.values(x.Args[0], en) {
				switch v.kind {
				case "string", "array":
					out = append(out, kind(v.kind))
				default:
					return []value{unknown("%s() of %s", name, v.describe())}
				}
			}
			return out
		}
	case "coalesce":
		var out []value
		for _, a := range x.Args {
			out = append(out, withoutNull(ev.values(a, en))...)
		}
		return out
	case "items":
		if len(x.Args) == 1 {
			var out []value
			for _, v := range ev.values(x.Args[0], en) {
				if v.obj == nil || len(v.obj.Spreads) > 0 {
					return []value{kind("array")}
				}
				arr := &ArrayExpr{At: v.obj.At}
				for _, p := range v.obj.Props {
					if p.KeyExpr != nil {
						return []value{kind("array")}
					}
					arr.Items = append(arr.Items, &ObjectExpr{At: p.At, Props: []*Property{
						{At: p.At, Key: "key", Value: &StringExpr{At: p.At, Parts: []string{p.Key}}},
						{At: p.At, Key: "value", Value: p.Value},
					}})
				}
				out = append(out, value{kind: "array", arr: arr, env: v.env})
			}
			return out
		}
	}
	if k, ok := functionKinds[name]; ok {
		return []value{kind(k)}
	}
	return []value{unknown("%s()", name)}
}

// union() of object literals is their merge (later properties win), as far as the check is
// concerned; of arrays an array.
func (ev *evaluator) union(x *CallExpr, en *env) []value {
	combos := [][]value{{}}
	for _, a := range x.Args {
		var next [][]value
		for _, v := range ev.values(a, en) {
			for _, c := range combos {
				next = append(next, append(append([]value{}, c...), v))
			}
		}
		if len(next) > maxAlternatives {
			return []value{unknown("union() with more than %d alternatives", maxAlternatives)}
		}
		combos = next
	}
	var out []value
	for _, c := range combos {
		allObjects, allArrays := true, true
		for _, v := range c {
			allObjects = allObjects && v.obj != nil
			allArrays = allArrays && v.kind == "array"
		}
		switch {
		case allObjects && len(c) > 0:
			merged := &ObjectExpr{At: x.At}
			index := map[string]int{}
			var envs []*env
			for _, v := range c {
				envs = append(envs, v.env)
				merged.Spreads = append(merged.Spreads, v.obj.Spreads...)
				for _, p := range v.obj.Props {
					wrapped := &Property{At: p.At, Key: p.Key, KeyExpr: p.KeyExpr, Value: &envExpr{x: p.Value, env: v.env}}
					if i, ok := index[p.Key]; ok && p.KeyExpr == nil {
						merged.Props[i] = wrapped
						continue
					}
					index[p.Key] = len(merged.Props)
					merged.Props = append(merged.Props, wrapped)
				}
			}
			out = append(out, value{kind: "object", obj: merged, env: en})
		case allArrays && len(c) > 0:
			out = append(out, kind("array"))
		default:
			kinds := map[string]bool{}
			for _, v := range c {
				kinds[v.kind] = true
			}
			if len(kinds) == 1 && (kinds["object"] || kinds["array"]) {
				for k := range kinds {
					out = append(out, kind(k))
				}
				continue
			}
			out = append(out, unknown("union() of values that are not all object literals"))
		}
	}
	return out
}

// envExpr is an expression evaluated in an env of its own (a property merged by union() from
// an object of another scope).
type envExpr struct {
	x   Expr
	env *env
}

func (e *envExpr) Line() int { return e.x.Line() }
