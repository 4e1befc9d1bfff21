package bicepcheck

// The type check: every resource body in the project against its resource type's definition
// (testdata/types), and every module's params against the module's parameters.

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A Finding is a problem one of the checks found at a line of a Bicep file.
type Finding struct {
	File    string
	Line    int
	Check   string // "types", or a linter rule's code
	Message string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Check, f.Message)
}

// A Skip is a property value the type check could not check: what the expression evaluates to
// is not known without deploying (a function's result, a property of something unknown, a loop
// variable over a parameter, …).
type Skip struct {
	File string
	Line int
	Path string // the property path in the resource body, e.g. properties.siteConfig.appSettings[*].value
	Why  string
}

func (s Skip) String() string { return fmt.Sprintf("%s:%d: %s: %s", s.File, s.Line, s.Path, s.Why) }

// TypeReport is the outcome of CheckTypes.
type TypeReport struct {
	Findings   []Finding
	Resources  int // resource declarations checked, existing ones included
	Existing   int // of which `existing`
	Modules    int // module declarations whose params were checked
	Properties int // property values (and array items) checked against their definition
	Skipped    []Skip
}

// CheckTypes checks every resource declaration of the project against its type definition:
// properties the type does not have (unless it allows additional ones), values of the wrong kind
// (string, int, bool, object, array, null), string values outside an enum (a union of string
// literals), string lengths, patterns and integer ranges, required properties missing, read-only
// properties set, and resource types that only `existing` may declare. An `existing` resource's
// body may only name the resource (name, parent, scope, or a Graph type's identifier such as
// appId). It also checks each local module's params against the module's parameters (unknown,
// missing required, kind and @allowed values). A property value whose value cannot be known is
// skipped and listed in Skipped; the Properties count is of the values that were checked.
func CheckTypes(p *Project) *TypeReport {
	c := &checker{ev: newEvaluator(p), project: p, rep: &TypeReport{}, status: map[string]*propStatus{}, seen: map[string]bool{}}
	for _, f := range p.Files {
		for _, d := range f.Resources() {
			c.resource(d)
		}
		for _, d := range f.Decls {
			if d.Kind == "module" {
				c.module(d)
			}
		}
	}
	for _, key := range c.order {
		s := c.status[key]
		if s.skip != nil {
			c.rep.Skipped = append(c.rep.Skipped, *s.skip)
		} else {
			c.rep.Properties++
		}
	}
	sortFindings(c.rep.Findings)
	return c.rep
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].File != fs[j].File {
			return fs[i].File < fs[j].File
		}
		return fs[i].Line < fs[j].Line
	})
}

type propStatus struct {
	skip *Skip
}

type checker struct {
	ev      *evaluator
	project *Project
	rep     *TypeReport
	status  map[string]*propStatus
	order   []string
	seen    map[string]bool // findings already reported (a loop body is checked once per element)
	trial   *[]Finding      // when set, findings go here instead of the report (trying union members)
}

func (c *checker) report(file string, line int, format string, args ...any) {
	f := Finding{File: file, Line: line, Check: "types", Message: fmt.Sprintf(format, args...)}
	if c.trial != nil {
		*c.trial = append(*c.trial, f)
		return
	}
	if c.seen[f.String()] {
		return
	}
	c.seen[f.String()] = true
	c.rep.Findings = append(c.rep.Findings, f)
}

// mark records that the value at file:line, path was checked, or (why not empty) skipped.
func (c *checker) mark(file string, line int, path, why string) {
	if c.trial != nil {
		return
	}
	key := fmt.Sprintf("%s\x00%d\x00%s", file, line, path)
	s := c.status[key]
	if s == nil {
		s = &propStatus{}
		c.status[key] = s
		c.order = append(c.order, key)
	}
	if why != "" && s.skip == nil {
		s.skip = &Skip{File: file, Line: line, Path: path, Why: why}
	}
}

// bodies unwraps `if (…)` and `[for …]` around a resource or module body: one (object, env) per
// loop element when the loop's array is known, else one with the loop variable unknown.
func (c *checker) bodies(e Expr, en *env) []struct {
	obj *ObjectExpr
	env *env
} {
	type body = struct {
		obj *ObjectExpr
		env *env
	}
	switch x := e.(type) {
	case *ObjectExpr:
		return []body{{x, en}}
	case *IfExpr:
		return c.bodies(x.Body, en)
	case *ForExpr:
		var out []body
		for _, le := range c.loopEnvs(x, en) {
			out = append(out, c.bodies(x.Body, le)...)
		}
		return out
	}
	return nil
}

// loopEnvs binds a for-expression's variables: to each element of the array it iterates when
// that is a literal (through variables, items() of an object literal, …), else to nothing known.
func (c *checker) loopEnvs(f *ForExpr, en *env) []*env {
	bindIndex := func(e *env, i int) *env {
		if f.Index == "" {
			return e
		}
		if i < 0 {
			return e.with(f.Index, binding{kind: "int"})
		}
		return e.with(f.Index, binding{expr: &IntExpr{At: f.At, Value: int64(i)}, env: en})
	}
	var out []*env
	for _, v := range c.ev.values(f.Iter, en) {
		spread := false
		if v.arr != nil {
			for _, it := range v.arr.Items {
				_, s := it.(*SpreadExpr)
				spread = spread || s
			}
		}
		if v.arr != nil && !spread && len(v.arr.Items) > 0 {
			for i, it := range v.arr.Items {
				out = append(out, bindIndex(en.with(f.Item, binding{expr: it, env: v.env}), i))
			}
			continue
		}
		why := "the loop's array is not known"
		if v.unknown != "" {
			why = "the loop's array is not known: " + v.unknown
		}
		out = append(out, bindIndex(en.with(f.Item, binding{unknown: why}), -1))
	}
	if len(out) > maxAlternatives {
		out = []*env{bindIndex(en.with(f.Item, binding{unknown: "a loop over too many elements"}), -1)}
	}
	return out
}

// Properties Bicep adds to every resource body.
var bicepResourceProperties = map[string]bool{"parent": true, "scope": true, "dependsOn": true}

func (c *checker) resource(d *Decl) {
	file := d.File.Path
	c.rep.Resources++
	if d.Existing {
		c.rep.Existing++
	}
	typ := d.FullType()
	if c.project.Defs == nil {
		c.report(file, d.Line, "no type definitions loaded")
		return
	}
	def := c.project.Defs.Resource(typ)
	if def == nil {
		c.report(file, d.Line, "resource %s: no type definition of %s in testdata/types (a wrong type or API version; or a new one: run go run ./devtools/bicepcheck/cmd/trimtypes)", d.Name, typ)
		return
	}
	if def.ReadOnly && !d.Existing {
		c.report(file, d.Line, "resource %s: %s is read-only: it can only be referenced with `existing`", d.Name, typ)
	}
	if !d.Existing {
		c.deployTimeConstants(d, def)
	}
	bodies := c.bodies(d.Value, &env{file: d.File})
	if len(bodies) == 0 {
		c.report(file, d.Line, "resource %s: the body is not an object", d.Name)
		return
	}
	for _, b := range bodies {
		if d.Existing {
			c.existing(d, def, b.obj, b.env)
			continue
		}
		c.object(b.obj, def.Body, "", b.env, true)
	}
}

func (c *checker) existing(d *Decl, def *ResourceDef, o *ObjectExpr, en *env) {
	file := d.File.Path
	body := def.Body
	var required []string
	for name, p := range body.Props {
		if p.Flags&FlagRequired != 0 && (name == "name" || p.Flags&FlagIdentifier != 0) {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	for _, p := range o.Props {
		if p.KeyExpr != nil {
			c.report(file, p.At, "existing resource %s: an interpolated property name", d.Name)
			continue
		}
		if bicepResourceProperties[p.Key] && p.Key != "dependsOn" {
			continue
		}
		def := body.Props[p.Key]
		if def == nil || !(p.Key == "name" || def.Flags&FlagIdentifier != 0) {
			c.report(file, p.At, "existing resource %s: %s cannot be set on an existing resource (only %s, parent, scope)", d.Name, p.Key, strings.Join(required, ", "))
			continue
		}
		c.value(p.Value, def.Type, p.Key, p.At, en, false)
	}
	for _, r := range required {
		if o.Prop(r) == nil && len(o.Spreads) == 0 {
			c.report(file, o.At, "existing resource %s: missing %s, which names the resource", d.Name, r)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// object checks an object literal against an object (or discriminated) type.
func (c *checker) object(o *ObjectExpr, t *Type, path string, en *env, resourceBody bool) {
	file := en.file.Path
	if t.Kind == "discriminated" {
		dp := o.Prop(t.Discrim)
		if dp == nil {
			if len(o.Spreads) == 0 {
				c.report(file, o.At, "%s: missing %s (one of %s)", orBody(path), t.Discrim, variantList(t))
			}
			return
		}
		var variants []*Type
		for _, v := range c.ev.values(dp.Value, en) {
			switch {
			case v.literal != nil:
				variant := t.Variants[*v.literal]
				if variant == nil {
					c.report(file, dp.At, "%s: %s '%s' is not one of %s", orBody(path), t.Discrim, *v.literal, variantList(t))
					continue
				}
				variants = append(variants, variant)
			case v.unknown != "":
				c.mark(file, dp.At, join(path, t.Discrim), v.unknown)
			default:
				c.mark(file, dp.At, join(path, t.Discrim), fmt.Sprintf("a %s whose value is not known chooses the variant", v.kind))
			}
		}
		for _, variant := range variants {
			merged := &Type{Kind: "object", Name: variant.Name, Props: map[string]*PropDef{}, Additional: variant.Additional}
			for k, p := range t.Base {
				merged.Props[k] = p
			}
			for k, p := range variant.Props {
				merged.Props[k] = p
			}
			c.object(o, merged, path, en, resourceBody)
		}
		return
	}
	for _, p := range o.Props {
		ppath := join(path, p.Key)
		if p.KeyExpr != nil {
			if t.Additional != nil {
				c.value(p.Value, t.Additional, join(path, "*"), p.At, en, true)
			} else {
				c.report(file, p.At, "%s: an interpolated property name, and %s allows no properties but its own", orBody(path), t.Describe())
			}
			continue
		}
		if resourceBody && bicepResourceProperties[p.Key] {
			continue
		}
		def := t.Props[p.Key]
		if def == nil {
			if t.Additional != nil {
				c.value(p.Value, t.Additional, ppath, p.At, en, true)
				continue
			}
			for name := range t.Props {
				if strings.EqualFold(name, p.Key) {
					c.report(file, p.At, "%s: unknown property %s: the definition spells it %s (property names are case-sensitive)", orBody(path), p.Key, name)
					def = t.Props[name]
				}
			}
			if def == nil {
				c.report(file, p.At, "%s: unknown property %s (%s has %s)", orBody(path), p.Key, t.Describe(), writable(t))
			}
			continue
		}
		if def.Flags&FlagReadOnly != 0 {
			c.report(file, p.At, "%s is read-only: it cannot be set", ppath)
			continue
		}
		c.value(p.Value, def.Type, ppath, p.At, en, def.Flags&FlagRequired == 0)
	}
	if len(o.Spreads) > 0 {
		return
	}
	var missing []string
	for name, def := range t.Props {
		if def.Flags&FlagRequired != 0 && def.Flags&FlagReadOnly == 0 && o.Prop(name) == nil {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		c.report(file, o.At, "%s: missing required property %s", orBody(path), m)
	}
}

func orBody(path string) string {
	if path == "" {
		return "resource body"
	}
	return path
}

func variantList(t *Type) string {
	var names []string
	for k := range t.Variants {
		names = append(names, "'"+k+"'")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// writable lists the properties of t that may be set.
func writable(t *Type) string {
	var names []string
	for name, p := range t.Props {
		if p.Flags&FlagReadOnly == 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "no settable properties"
	}
	if len(names) > 12 {
		return strings.Join(names[:12], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}

// value checks what e can be against type t; line is where e is assigned.
func (c *checker) value(e Expr, t *Type, path string, line int, en *env, nullOK bool) {
	for _, v := range c.ev.values(e, en) {
		c.check(v, e, t, path, line, en, nullOK)
	}
}

func (c *checker) check(v value, e Expr, t *Type, path string, line int, en *env, nullOK bool) {
	file := en.file.Path
	if v.unknown != "" {
		c.mark(file, line, path, v.unknown)
		return
	}
	if v.kind == "resource" || v.kind == "module" {
		c.mark(file, line, path, "a reference to a "+v.kind)
		return
	}
	if t == nil || t.Kind == "any" || t.Kind == "function" {
		c.mark(file, line, path, "")
		return
	}
	if v.kind == "null" {
		if !nullOK && !acceptsKind(t, "null") {
			c.report(file, line, "%s: null, but the property is required (%s)", path, t.Describe())
		}
		c.mark(file, line, path, "")
		return
	}
	where := ""
	if v.at != 0 && v.at != line {
		where = fmt.Sprintf(" (value from line %d)", v.at)
	}
	switch t.Kind {
	case "union":
		c.union(v, e, t, path, line, en, nullOK, where)
		return
	case "literal":
		switch {
		case v.literal != nil && *v.literal == t.Value:
		case v.literal != nil:
			c.report(file, line, "%s: '%s' is not %s%s", path, *v.literal, t.Describe(), where)
		case v.kind == "string":
			c.mark(file, line, path, fmt.Sprintf("a string whose value is not known, for %s", t.Describe()))
			return
		default:
			c.report(file, line, "%s: expects %s, got %s%s", path, t.Describe(), v.describe(), where)
		}
		c.mark(file, line, path, "")
		return
	}
	want := t.Kind
	if want == "discriminated" {
		want = "object"
	}
	if v.kind != want {
		c.report(file, line, "%s: expects %s, got %s%s", path, t.Describe(), v.describe(), where)
		c.mark(file, line, path, "")
		return
	}
	c.mark(file, line, path, "")
	switch t.Kind {
	case "string":
		if v.literal != nil {
			c.stringConstraints(*v.literal, t, path, line, file, where)
		}
	case "int":
		if v.intLit != nil {
			if t.MinValue != nil && *v.intLit < *t.MinValue || t.MaxValue != nil && *v.intLit > *t.MaxValue {
				c.report(file, line, "%s: %d is outside %s%s", path, *v.intLit, intRange(t), where)
			}
		}
	case "object", "discriminated":
		if v.obj != nil {
			c.object(v.obj, t, path, v.env, false)
		}
	case "array":
		switch {
		case v.arr != nil:
			spread := false
			for i, it := range v.arr.Items {
				if s, ok := it.(*SpreadExpr); ok {
					spread = true
					c.mark(file, s.At, path+"[…]", "a spread")
					continue
				}
				c.value(it, t.Item, fmt.Sprintf("%s[%d]", path, i), it.Line(), v.env, false)
			}
			n := int64(len(v.arr.Items))
			if !spread && (t.MinLength != nil && n < *t.MinLength || t.MaxLength != nil && n > *t.MaxLength) {
				c.report(file, line, "%s: %d items, outside %s%s", path, n, lengthRange(t), where)
			}
		case v.forx != nil:
			for _, le := range c.loopEnvs(v.forx, v.env) {
				c.value(v.forx.Body, t.Item, path+"[*]", v.forx.Body.Line(), le, false)
			}
		}
	}
}

func (c *checker) union(v value, e Expr, t *Type, path string, line int, en *env, nullOK bool, where string) {
	file := en.file.Path
	var literals []*Type
	var sameKind []*Type
	want := v.kind
	for _, m := range flatten(t) {
		k := m.Kind
		if k == "discriminated" {
			k = "object"
		}
		switch {
		case m.Kind == "any":
			c.mark(file, line, path, "")
			return
		case m.Kind == "literal":
			literals = append(literals, m)
		case k == want:
			sameKind = append(sameKind, m)
		}
	}
	if want == "string" {
		if v.literal != nil {
			for _, l := range literals {
				if l.Value == *v.literal {
					c.mark(file, line, path, "")
					return
				}
			}
		}
		if len(sameKind) > 0 { // any string
			c.mark(file, line, path, "")
			if v.literal != nil {
				c.stringConstraints(*v.literal, sameKind[0], path, line, file, where)
			}
			return
		}
		if len(literals) > 0 {
			if v.literal == nil {
				c.mark(file, line, path, fmt.Sprintf("a string whose value is not known, for %s", t.Describe()))
				return
			}
			c.report(file, line, "%s: '%s' is not one of %s%s", path, *v.literal, t.Describe(), where)
			c.mark(file, line, path, "")
			return
		}
	}
	if len(sameKind) == 0 {
		c.report(file, line, "%s: expects %s, got %s%s", path, t.Describe(), v.describe(), where)
		c.mark(file, line, path, "")
		return
	}
	if len(sameKind) == 1 {
		c.check(v, e, sameKind[0], path, line, en, nullOK)
		return
	}
	// Several members of the value's kind: it must fit one of them.
	var best []Finding
	for i, m := range sameKind {
		var found []Finding
		saved := c.trial
		c.trial = &found
		c.check(v, e, m, path, line, en, nullOK)
		c.trial = saved
		if len(found) == 0 {
			c.check(v, e, m, path, line, en, nullOK) // for the counts
			return
		}
		if i == 0 || len(found) < len(best) {
			best = found
		}
	}
	for _, f := range best {
		c.report(f.File, f.Line, "%s (checked against each member of %s)", f.Message, t.Describe())
	}
}

// flatten lists a union's members, nested unions included.
func flatten(t *Type) []*Type {
	if t.Kind != "union" {
		return []*Type{t}
	}
	var out []*Type
	for _, e := range t.Elements {
		out = append(out, flatten(e)...)
	}
	return out
}

func acceptsKind(t *Type, k string) bool {
	for _, m := range flatten(t) {
		if m.Kind == k || m.Kind == "any" {
			return true
		}
	}
	return false
}

var patternCache = map[string]*regexp.Regexp{}

func (c *checker) stringConstraints(s string, t *Type, path string, line int, file, where string) {
	n := int64(len([]rune(s)))
	if t.MinLength != nil && n < *t.MinLength || t.MaxLength != nil && n > *t.MaxLength {
		c.report(file, line, "%s: '%s' has %d characters, outside %s%s", path, s, n, lengthRange(t), where)
	}
	if t.Pattern == "" {
		return
	}
	re, ok := patternCache[t.Pattern]
	if !ok {
		// The definitions' patterns are .NET regular expressions; those Go's RE2 cannot compile
		// (lookarounds, backreferences) are not checked.
		re, _ = regexp.Compile(t.Pattern)
		patternCache[t.Pattern] = re
	}
	if re != nil && !re.MatchString(s) {
		c.report(file, line, "%s: '%s' does not match the pattern %s%s", path, s, t.Pattern, where)
	}
}

func intRange(t *Type) string {
	switch {
	case t.MinValue != nil && t.MaxValue != nil:
		return fmt.Sprintf("%d..%d", *t.MinValue, *t.MaxValue)
	case t.MinValue != nil:
		return fmt.Sprintf(">= %d", *t.MinValue)
	case t.MaxValue != nil:
		return fmt.Sprintf("<= %d", *t.MaxValue)
	}
	return "any"
}

func lengthRange(t *Type) string {
	switch {
	case t.MinLength != nil && t.MaxLength != nil:
		return fmt.Sprintf("length %d..%d", *t.MinLength, *t.MaxLength)
	case t.MinLength != nil:
		return fmt.Sprintf("length >= %d", *t.MinLength)
	case t.MaxLength != nil:
		return fmt.Sprintf("length <= %d", *t.MaxLength)
	}
	return "any length"
}

// Properties of a module body other than params.
var moduleProperties = map[string]bool{"name": true, "scope": true, "dependsOn": true, "identity": true, "extensionConfigs": true, "params": true}

// module checks a local module's params against the module's parameters.
func (c *checker) module(d *Decl) {
	file := d.File.Path
	mod := c.project.Module(d)
	if mod == nil {
		if !strings.HasPrefix(d.Ref, "br") && !strings.HasPrefix(d.Ref, "ts") {
			c.report(file, d.Line, "module %s: %s is not among the files checked", d.Name, d.Ref)
		}
		return
	}
	c.rep.Modules++
	c.deployTimeConstants(d, nil)
	for _, b := range c.bodies(d.Value, &env{file: d.File}) {
		var params *ObjectExpr
		for _, p := range b.obj.Props {
			if p.KeyExpr != nil || !moduleProperties[p.Key] {
				c.report(file, p.At, "module %s: unknown property %s (a module takes %s)", d.Name, p.Key, "name, scope, params, dependsOn, identity")
				continue
			}
			if p.Key == "params" {
				if o, ok := p.Value.(*ObjectExpr); ok {
					params = o
				} else {
					c.mark(file, p.At, "params", "params is not an object literal")
				}
			}
		}
		declared := map[string]*Decl{}
		for _, pd := range mod.Decls {
			if pd.Kind == "param" {
				declared[pd.Name] = pd
			}
		}
		given := map[string]bool{}
		if params != nil {
			for _, p := range params.Props {
				if p.KeyExpr != nil {
					c.mark(file, p.At, "params.*", "an interpolated parameter name")
					continue
				}
				given[p.Key] = true
				pd := declared[p.Key]
				if pd == nil {
					c.report(file, p.At, "module %s: %s has no parameter %s", d.Name, d.Ref, p.Key)
					continue
				}
				c.value(p.Value, paramType(pd), "params."+p.Key, p.At, b.env, pd.Value != nil || pd.Type != nil && pd.Type.Nullable)
			}
		}
		if params != nil && len(params.Spreads) > 0 {
			continue
		}
		var missing []string
		for name, pd := range declared {
			if pd.Value == nil && !(pd.Type != nil && pd.Type.Nullable) && !given[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		for _, m := range missing {
			c.report(file, d.Line, "module %s: missing parameter %s (%s declares it without a default)", d.Name, m, d.Ref)
		}
	}
}

// paramType is a parameter's declared type as a definition type: its kind, or the union of its
// @allowed values; nil (anything) when not known.
func paramType(d *Decl) *Type {
	vs := paramValues(d)
	if len(vs) == 1 && vs[0].unknown == "" && vs[0].literal == nil && vs[0].intLit == nil {
		t := &Type{Kind: vs[0].kind}
		switch t.Kind {
		case "object":
			t.Additional = &Type{Kind: "any"}
		case "array":
			t.Item = &Type{Kind: "any"}
		}
		return t
	}
	u := &Type{Kind: "union"}
	for _, v := range vs {
		switch {
		case v.unknown != "":
			return nil
		case v.literal != nil:
			u.Elements = append(u.Elements, &Type{Kind: "literal", Value: *v.literal})
		case v.intLit != nil:
			u.Elements = append(u.Elements, &Type{Kind: "int", MinValue: v.intLit, MaxValue: v.intLit})
		default:
			k := &Type{Kind: v.kind}
			if v.kind == "object" {
				k.Additional = &Type{Kind: "any"}
			}
			if v.kind == "array" {
				k.Item = &Type{Kind: "any"}
			}
			u.Elements = append(u.Elements, k)
		}
	}
	return u
}

// Deploy-time constants (Bicep's DeployTimeConstantValidator, error BCP120): the values ARM
// needs before it deploys anything — a resource's name, location, kind, sku, identity, tags,
// scope and parent (and any property its type flags DeployTimeConstant), a module's name and
// scope, the condition of an `if` and the array of a resource or module loop — cannot read what
// only exists once resources are deployed: a resource's properties other than id, name, type and
// apiVersion (and those its type requires and flags DeployTimeConstant), a module's outputs, a
// whole resource or module, or reference() and list*().

// azDeployTimeConstantProperties are the top-level properties of an Azure resource body that
// take deploy-time constants (AzResourceTypeProvider.WriteOnlyDeployTimeConstantPropertyNames, and
// name, scope, parent).
var azDeployTimeConstantProperties = map[string]bool{
	"name": true, "scope": true, "parent": true,
	"location": true, "kind": true, "subscriptionId": true, "resourceGroup": true, "managedBy": true,
	"extendedLocation": true, "zones": true, "placement": true, "plan": true, "sku": true,
	"identity": true, "managedByExtended": true, "tags": true,
}

// deployTimeConstants checks the deploy-time constants of a resource (def non-nil) or module
// declaration.
func (c *checker) deployTimeConstants(d *Decl, def *ResourceDef) {
	en := &env{file: d.File}
	var unwrap func(e Expr)
	unwrap = func(e Expr) {
		switch x := e.(type) {
		case *IfExpr:
			c.dtc(x.Cond, "the condition of "+d.Name, x.At, en, false)
			unwrap(x.Body)
		case *ForExpr:
			c.dtc(x.Iter, "the loop of "+d.Name, x.At, en, false)
			unwrap(x.Body)
		case *ObjectExpr:
			for _, p := range x.Props {
				if p.KeyExpr != nil {
					continue
				}
				take := false
				switch {
				case d.Kind == "module":
					take = p.Key == "name" || p.Key == "scope"
				case strings.HasPrefix(strings.ToLower(d.FullType()), "microsoft.graph/"):
					take = p.Key == "parent" || p.Key == "scope"
				default:
					take = azDeployTimeConstantProperties[p.Key]
				}
				if def != nil {
					if pd := def.Body.Prop(p.Key); pd != nil && pd.Flags&FlagDeployTimeConstant != 0 && pd.Flags&FlagReadOnly == 0 {
						take = true
					}
				}
				if take {
					c.dtc(p.Value, p.Key, p.At, en, p.Key == "scope" || p.Key == "parent")
				}
			}
		}
	}
	unwrap(d.Value)
}

// dtc reports what in e (following variables) is not known when the deployment starts.
func (c *checker) dtc(e Expr, what string, line int, en *env, symbolsAllowed bool) {
	file := en.file.Path
	seen := map[*Decl]bool{}
	var visit func(e Expr, via string)
	visit = func(e Expr, via string) {
		if e == nil {
			return
		}
		switch x := e.(type) {
		case *MemberExpr, *IndexExpr:
			root, first, indexes := accessRoot(x)
			if d := c.symbolOf(root, en); d != nil {
				if first == "" {
					if !symbolsAllowed {
						c.report(file, line, "%s needs a value known when the deployment starts (BCP120); %s%s, a whole %s, is not", what, exprText(x), via, d.Kind)
					}
				} else if readable := c.readableAtStart(d); !slices.Contains(readable, first) {
					c.report(file, line, "%s needs a value known when the deployment starts (BCP120); %s%s is not (%s %s: %s)", what, exprText(x), via, d.Kind, d.Name, knownAtStart(readable))
				}
				for _, ix := range indexes {
					visit(ix, via)
				}
				return
			}
		case *IdentExpr:
			if _, local := en.local[x.Name]; local {
				return
			}
			d := en.file.Symbol(x.Name)
			if d == nil {
				return
			}
			switch d.Kind {
			case "resource", "module":
				if !symbolsAllowed {
					c.report(file, line, "%s needs a value known when the deployment starts (BCP120); %s%s, a whole %s, is not", what, x.Name, via, d.Kind)
				}
			case "var":
				if !seen[d] {
					seen[d] = true
					visit(d.Value, fmt.Sprintf(" (through variable %s)", d.Name))
				}
			}
			return
		case *CallExpr:
			name, on := x.FuncName()
			lower := strings.ToLower(name)
			if (on == nil || isIdent(on, "az")) && (lower == "reference" || strings.HasPrefix(lower, "list")) ||
				on != nil && strings.HasPrefix(lower, "list") && c.symbolOf(on, en) != nil {
				c.report(file, line, "%s needs a value known when the deployment starts (BCP120); %s()%s, read from a deployed resource, is not", what, name, via)
			}
		}
		children(e, func(ch Expr) { visit(ch, via) })
	}
	visit(e, "")
}

// accessRoot returns, for r.a.b or r[0].a or r['a'], the root expression, the first property
// accessed on it ("" if none: r[0] alone) and the index expressions met.
func accessRoot(e Expr) (root Expr, first string, indexes []Expr) {
	var names []string
	for {
		switch x := e.(type) {
		case *MemberExpr:
			names = append([]string{x.Name}, names...)
			e = x.X
			continue
		case *IndexExpr:
			indexes = append(indexes, x.Index)
			if s, ok := x.Index.(*StringExpr); ok {
				if lit, ok := s.Literal(); ok {
					names = append([]string{lit}, names...)
				}
			}
			e = x.X
			continue
		case *UnaryExpr:
			if x.Postfix {
				e = x.X
				continue
			}
		}
		break
	}
	if len(names) > 0 {
		first = names[0]
	}
	return e, first, indexes
}

// symbolOf returns the resource or module declaration e names (a symbol or parent::child), or nil.
func (c *checker) symbolOf(e Expr, en *env) *Decl {
	if d := c.ev.resourceSymbol(e, en); d != nil {
		return d
	}
	if id, ok := e.(*IdentExpr); ok {
		if _, local := en.local[id.Name]; !local {
			if d := en.file.Symbol(id.Name); d != nil && d.Kind == "module" {
				return d
			}
		}
	}
	return nil
}

// readableAtStart lists the properties of a resource or module known when the deployment starts.
func (c *checker) readableAtStart(d *Decl) []string {
	if d.Kind == "module" {
		return []string{"name"}
	}
	var out []string
	graph := strings.HasPrefix(strings.ToLower(d.FullType()), "microsoft.graph/")
	if !graph {
		out = []string{"apiVersion", "id", "name", "type"}
	}
	if c.project.Defs != nil {
		if def := c.project.Defs.Resource(d.FullType()); def != nil {
			for name, p := range def.Body.Props {
				if p.Flags&FlagRequired != 0 && p.Flags&FlagDeployTimeConstant != 0 && !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func knownAtStart(names []string) string {
	switch len(names) {
	case 0:
		return "none of its properties is known at the start"
	case 1:
		return "only " + names[0] + " is known at the start"
	}
	return "only " + strings.Join(names, ", ") + " are known at the start"
}
