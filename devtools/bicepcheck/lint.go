package bicepcheck

// Bicep linter rules, reimplemented after their sources in Azure/bicep
// (src/Bicep.Core/Analyzers/Linter/Rules), for the rules that bicepconfig.json raises to error,
// the rules that are errors by default, and the ones calstatus holds itself to.

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// RuleDefaults are the linter rules of Azure/bicep and their default levels: a rule's
// category's level (LinterRuleBase.GetDefaultDiagosticLevelForCategory) unless the rule
// overrides it. Read from Azure/bicep at commit 9beb0fee60ca53458f41492b699af440367b240b.
var RuleDefaults = map[string]string{
	"adminusername-should-not-be-literal": "warning",
	"artifacts-parameters":                "warning",
	"decompiler-cleanup":                  "warning",
	"explicit-values-for-loc-params":      "off",
	"max-asserts":                         "error",
	"max-outputs":                         "error",
	"max-params":                          "error",
	"max-resources":                       "error",
	"max-variables":                       "error",
	"nested-deployment-template-scoping":  "error",
	"no-conflicting-metadata":             "warning",
	"no-deployments-resources":            "warning",
	"no-explicit-any":                     "warning",
	"no-hardcoded-env-urls":               "warning",
	"no-hardcoded-location":               "off",
	"no-hardcoded-outputs":                "off",
	"no-loc-expr-outside-params":          "off",
	"no-module-name":                      "off",
	"no-unnecessary-dependson":            "warning",
	"no-unused-existing-resources":        "warning",
	"no-unused-imports":                   "warning",
	"no-unused-params":                    "warning",
	"no-unused-types":                     "warning",
	"no-unused-vars":                      "warning",
	"outputs-should-not-contain-secrets":  "warning",
	"prefer-interpolation":                "warning",
	"prefer-unquoted-property-names":      "warning",
	"protect-commandtoexecute-secrets":    "warning",
	"secure-parameter-default":            "warning",
	"secure-params-in-nested-deploy":      "warning",
	"secure-params-in-parameters-file":    "warning",
	"secure-secrets-in-params":            "warning",
	"simplify-interpolation":              "warning",
	"simplify-json-null":                  "warning",
	"stacks-extensibility-compat":         "info",
	"use-description-outputs":             "off",
	"use-description-params":              "off",
	"use-description-type-properties":     "off",
	"use-description-types":               "off",
	"use-description-vars":                "off",
	"use-parent-property":                 "warning",
	"use-recent-api-versions":             "off",
	"use-recent-az-powershell-version":    "warning",
	"use-recent-module-versions":          "off",
	"use-recognized-resource-type":        "warning",
	"use-resource-id-functions":           "off",
	"use-resource-symbol-reference":       "warning",
	"use-safe-access":                     "warning",
	"use-secure-value-for-secure-inputs":  "warning",
	"use-stable-resource-identifiers":     "warning",
	"use-stable-vm-image":                 "warning",
	"use-user-defined-types":              "off",
	"what-if-short-circuiting":            "off",
}

// RequiredRules are the rules calstatus's checks always apply as errors, whatever their level
// in bicepconfig.json.
var RequiredRules = []string{"outputs-should-not-contain-secrets", "secure-parameter-default", "no-unused-params"}

// Rules are the linter rules Lint implements.
var Rules = map[string]func(*linter, *File){
	"outputs-should-not-contain-secrets": (*linter).outputsShouldNotContainSecrets,
	"secure-parameter-default":           (*linter).secureParameterDefault,
	"no-unused-params":                   (*linter).noUnusedParams,
	"max-asserts":                        func(l *linter, f *File) { l.maxNumber(f, "max-asserts", "assert", 32) },
	"max-outputs":                        func(l *linter, f *File) { l.maxNumber(f, "max-outputs", "output", 64) },
	"max-params":                         func(l *linter, f *File) { l.maxNumber(f, "max-params", "param", 256) },
	"max-resources":                      func(l *linter, f *File) { l.maxNumber(f, "max-resources", "resource", 800) },
	"max-variables":                      func(l *linter, f *File) { l.maxNumber(f, "max-variables", "var", 512) },
	"nested-deployment-template-scoping": (*linter).nestedDeploymentTemplateScoping,
}

// LintConfig is the analyzers.core section of a bicepconfig.json.
type LintConfig struct {
	Enabled bool
	Levels  map[string]string // rule → level set in the file
}

// ReadLintConfig reads a bicepconfig.json's linter settings.
func ReadLintConfig(path string) (*LintConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var config struct {
		Analyzers struct {
			Core struct {
				Enabled *bool `json:"enabled"`
				Rules   map[string]struct {
					Level string `json:"level"`
				} `json:"rules"`
			} `json:"core"`
		} `json:"analyzers"`
	}
	if err := json.Unmarshal(StripJSONComments(data), &config); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	c := &LintConfig{Enabled: true, Levels: map[string]string{}}
	if e := config.Analyzers.Core.Enabled; e != nil {
		c.Enabled = *e
	}
	for rule, r := range config.Analyzers.Core.Rules {
		if _, known := RuleDefaults[rule]; !known {
			return nil, fmt.Errorf("%s: unknown linter rule %s", path, rule)
		}
		switch r.Level {
		case "off", "info", "warning", "error":
		default:
			return nil, fmt.Errorf("%s: rule %s: unknown level %q", path, rule, r.Level)
		}
		c.Levels[rule] = r.Level
	}
	return c, nil
}

// Level returns the level a rule runs at under this configuration.
func (c *LintConfig) Level(rule string) string {
	if !c.Enabled {
		return "off"
	}
	if l, ok := c.Levels[rule]; ok {
		return l
	}
	return RuleDefaults[rule]
}

// ErrorRules returns the rules this configuration makes errors, sorted.
func (c *LintConfig) ErrorRules() []string {
	var out []string
	for rule := range RuleDefaults {
		if c.Level(rule) == "error" {
			out = append(out, rule)
		}
	}
	sort.Strings(out)
	return out
}

type linter struct {
	project  *Project
	ev       *evaluator
	rule     string
	findings []Finding
}

// Lint applies the given rules (which must be in Rules) to every file of the project.
func Lint(p *Project, rules []string) ([]Finding, error) {
	l := &linter{project: p, ev: newEvaluator(p)}
	for _, rule := range rules {
		run, ok := Rules[rule]
		if !ok {
			return nil, fmt.Errorf("linter rule %s is not implemented by bicepcheck", rule)
		}
		l.rule = rule
		for _, f := range p.Files {
			run(l, f)
		}
	}
	sortFindings(l.findings)
	return l.findings, nil
}

func (l *linter) report(f *File, line int, format string, args ...any) {
	if f.IsDisabled(l.rule, line) {
		return
	}
	l.findings = append(l.findings, Finding{File: f.Path, Line: line, Check: l.rule, Message: fmt.Sprintf(format, args...)})
}

// outputs-should-not-contain-secrets (OutputsShouldNotContainSecretsRule, FindPossibleSecretsVisitor):
// an output without @secure() whose name contains "password", or whose value references, anywhere
// (inside a function call or a condition too), a value of a secure type — a @secure() parameter,
// a variable whose value is one, a resource property the type definition marks sensitive, a
// module's @secure() output — or calls a list*() function (standalone, az.list*(), or on a
// resource).
func (l *linter) outputsShouldNotContainSecrets(f *File) {
	const description = "Outputs should not contain secrets."
	for _, d := range f.Decls {
		if d.Kind != "output" || d.Secure() {
			continue
		}
		if strings.Contains(strings.ToLower(d.Name), "password") {
			l.report(f, d.Line, "%s Found possible secret: output name '%s' suggests a secret", description, d.Name)
		}
		s := &secretFinder{l: l, file: f}
		s.visit(d.Value, 0, map[string]bool{})
		for _, found := range s.found {
			l.report(f, found.line, "%s Found possible secret: %s (output %s)", description, found.what, d.Name)
		}
	}
}

type possibleSecret struct {
	line int
	what string
}

type secretFinder struct {
	l     *linter
	file  *File
	found []possibleSecret
}

// visit walks e; trailing counts the property and index accesses applied to e by its parents;
// locals are loop variables and lambda parameters in scope.
func (s *secretFinder) visit(e Expr, trailing int, locals map[string]bool) {
	if e == nil {
		return
	}
	switch x := e.(type) {
	case *IdentExpr:
		if locals[x.Name] {
			return
		}
		for _, p := range s.l.securePaths(x, s.file, trailing > 0, map[*Decl]bool{}) {
			s.found = append(s.found, possibleSecret{x.At, fmt.Sprintf("secure value '%s%s'", x.Name, p)})
		}
		return
	case *MemberExpr:
		for _, p := range s.l.securePaths(x, s.file, trailing > 0, map[*Decl]bool{}) {
			s.found = append(s.found, possibleSecret{x.At, fmt.Sprintf("secure value '%s%s'", exprText(x), p)})
		}
		s.visit(x.X, trailing+1, locals)
		return
	case *IndexExpr:
		if lit, ok := x.Index.(*StringExpr); ok {
			if key, ok := lit.Literal(); ok { // r.a['b'] is r.a.b
				for _, p := range s.l.securePaths(&MemberExpr{At: x.At, X: x.X, Name: key}, s.file, trailing > 0, map[*Decl]bool{}) {
					s.found = append(s.found, possibleSecret{x.At, fmt.Sprintf("secure value '%s%s'", exprText(x), p)})
				}
			}
		}
		s.visit(x.X, trailing+1, locals)
		s.visit(x.Index, 0, locals)
		return
	case *CallExpr:
		name, on := x.FuncName()
		if strings.HasPrefix(strings.ToLower(name), "list") {
			switch {
			case on == nil && s.file.Symbol(name) == nil, on != nil && isIdent(on, "az"):
				s.found = append(s.found, possibleSecret{x.At, fmt.Sprintf("function '%s'", name)})
			case on != nil && s.l.isResource(on, s.file, locals, map[*Decl]bool{}):
				s.found = append(s.found, possibleSecret{x.At, fmt.Sprintf("function '%s'", name)})
			}
		}
		if m, ok := x.Fn.(*MemberExpr); ok {
			s.visit(m.X, 0, locals)
		}
		for _, a := range x.Args {
			s.visit(a, 0, locals)
		}
		return
	case *ForExpr:
		s.visit(x.Iter, 0, locals)
		inner := withLocals(locals, x.Item, x.Index)
		s.visit(x.Body, 0, inner)
		return
	case *LambdaExpr:
		s.visit(x.Body, 0, withLocals(locals, x.Params...))
		return
	}
	children(e, func(c Expr) { s.visit(c, 0, locals) })
}

func withLocals(locals map[string]bool, names ...string) map[string]bool {
	out := map[string]bool{}
	for k := range locals {
		out[k] = true
	}
	for _, n := range names {
		if n != "" {
			out[n] = true
		}
	}
	return out
}

// children calls fn for each direct sub-expression of e.
func children(e Expr, fn func(Expr)) {
	first := true
	Walk(e, func(c Expr) bool {
		if first {
			first = false
			return true
		}
		fn(c)
		return false
	})
}

// securePaths returns the paths to secure components of what e (a symbol or a property access)
// is — "" when the value itself is secure — as TypeHelper.FindPathsToSecureTypeComponents does: a
// dereferenced value (trailing) only counts if it is secure itself.
func (l *linter) securePaths(e Expr, f *File, trailing bool, seen map[*Decl]bool) []string {
	switch x := e.(type) {
	case *IdentExpr:
		d := f.Symbol(x.Name)
		if d == nil || seen[d] {
			return nil
		}
		switch d.Kind {
		case "param":
			if d.Secure() {
				return []string{""}
			}
		case "var":
			seen[d] = true
			defer delete(seen, d)
			if l.secureExpr(d.Value, f, seen) {
				return []string{""}
			}
		}
	case *MemberExpr:
		if t, ok, _ := l.ev.resourcePropertyType(x, &env{file: f}); ok && t != nil {
			return sensitivePaths(t, "", trailing, map[*Type]bool{})
		}
		if out, ok := l.ev.moduleOutput(x, &env{file: f}); ok && out != nil && out.Secure() {
			return []string{""}
		}
		// m.outputs, not dereferenced further: its @secure() outputs.
		if x.Name == "outputs" && !trailing {
			if id, ok := x.X.(*IdentExpr); ok {
				if d := f.Symbol(id.Name); d != nil && d.Kind == "module" {
					if mod := l.project.Module(d); mod != nil {
						var paths []string
						for _, o := range mod.Decls {
							if o.Kind == "output" && o.Secure() {
								paths = append(paths, "."+o.Name)
							}
						}
						return paths
					}
				}
			}
		}
	}
	return nil
}

// secureExpr: the value of e has a secure type (a variable assigned it is secure too).
func (l *linter) secureExpr(e Expr, f *File, seen map[*Decl]bool) bool {
	switch x := e.(type) {
	case *ParenExpr:
		return l.secureExpr(x.X, f, seen)
	case *IdentExpr, *MemberExpr:
		for _, p := range l.securePaths(x, f, false, seen) {
			if p == "" {
				return true
			}
		}
	case *TernaryExpr:
		return l.secureExpr(x.Then, f, seen) || l.secureExpr(x.Else, f, seen)
	case *BinaryExpr:
		return x.Op == "??" && (l.secureExpr(x.X, f, seen) || l.secureExpr(x.Y, f, seen))
	case *UnaryExpr:
		return x.Postfix && l.secureExpr(x.X, f, seen)
	}
	return false
}

// sensitivePaths lists the paths to sensitive parts of a type.
func sensitivePaths(t *Type, path string, trailing bool, seen map[*Type]bool) []string {
	if t == nil || seen[t] {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	var out []string
	if t.Sensitive {
		out = append(out, path)
	}
	if t.Kind == "union" {
		for _, e := range t.Elements {
			out = append(out, sensitivePaths(e, path, trailing, seen)...)
		}
	}
	if trailing {
		return out
	}
	switch t.Kind {
	case "object":
		if t.Additional != nil {
			out = append(out, sensitivePaths(t.Additional, path+".*", trailing, seen)...)
		}
		var names []string
		for n := range t.Props {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, sensitivePaths(t.Props[n].Type, path+"."+n, trailing, seen)...)
		}
	case "array":
		out = append(out, sensitivePaths(t.Item, path+"[*]", trailing, seen)...)
	}
	return out
}

// isResource: e is a resource (a resource symbol, parent::child, an element of a resource
// loop, or a variable holding one).
func (l *linter) isResource(e Expr, f *File, locals map[string]bool, seen map[*Decl]bool) bool {
	switch x := e.(type) {
	case *IdentExpr:
		if locals[x.Name] {
			return false
		}
		d := f.Symbol(x.Name)
		if d == nil || seen[d] {
			return false
		}
		switch d.Kind {
		case "resource":
			return true
		case "var":
			seen[d] = true
			return l.isResource(d.Value, f, nil, seen)
		}
	case *ChildExpr:
		return true
	case *IndexExpr:
		return l.isResource(x.X, f, locals, seen)
	case *ParenExpr:
		return l.isResource(x.X, f, locals, seen)
	}
	return false
}

// exprText renders a.b.c for messages.
func exprText(e Expr) string {
	switch x := e.(type) {
	case *IdentExpr:
		return x.Name
	case *MemberExpr:
		sep := "."
		if x.Safe {
			sep = ".?"
		}
		return exprText(x.X) + sep + x.Name
	case *ChildExpr:
		return exprText(x.X) + "::" + x.Name
	case *IndexExpr:
		return exprText(x.X) + "[…]"
	case *CallExpr:
		return exprText(x.Fn) + "(…)"
	}
	return "…"
}

// secure-parameter-default (SecureParameterDefaultRule): a @secure() parameter's default may only
// be ” (not interpolated), {} (no properties), an expression calling newGuid(), or a value of a
// secure type.
func (l *linter) secureParameterDefault(f *File) {
	for _, d := range f.Decls {
		if d.Kind != "param" || !d.Secure() || d.Value == nil {
			continue
		}
		switch v := d.Value.(type) {
		case *StringExpr:
			if lit, ok := v.Literal(); ok && lit == "" {
				continue
			}
		case *ObjectExpr:
			if len(v.Props) == 0 {
				continue
			}
		}
		if l.secureExpr(d.Value, f, map[*Decl]bool{}) || callsNewGuid(d.Value) {
			continue
		}
		l.report(f, d.Value.Line(), "Secure parameters should not have hardcoded defaults (except for empty or newGuid()): param %s", d.Name)
	}
}

func callsNewGuid(e Expr) bool {
	found := false
	Walk(e, func(x Expr) bool {
		if c, ok := x.(*CallExpr); ok {
			if name, on := c.FuncName(); name == "newGuid" && (on == nil || isIdent(on, "sys")) {
				found = true
			}
		}
		return !found
	})
	return found
}

// no-unused-params (NoUnusedParametersRule): a parameter no expression of the file refers to.
func (l *linter) noUnusedParams(f *File) {
	used := map[string]bool{}
	for _, d := range f.Decls {
		for _, dec := range d.Decorators {
			references(dec, nil, used)
		}
		references(d.Value, nil, used)
	}
	for _, d := range f.Decls {
		if d.Kind == "param" && !used[d.Name] {
			l.report(f, d.Line, "Parameter \"%s\" is declared but never used.", d.Name)
		}
	}
}

// references adds to out the names of the symbols e refers to (not loop variables or lambda
// parameters in scope, property names, or function names).
func references(e Expr, locals map[string]bool, out map[string]bool) {
	if e == nil {
		return
	}
	switch x := e.(type) {
	case *IdentExpr:
		if !locals[x.Name] {
			out[x.Name] = true
		}
		return
	case *ForExpr:
		references(x.Iter, locals, out)
		references(x.Body, withLocals(locals, x.Item, x.Index), out)
		return
	case *LambdaExpr:
		references(x.Body, withLocals(locals, x.Params...), out)
		return
	case *CallExpr:
		if m, ok := x.Fn.(*MemberExpr); ok {
			references(m.X, locals, out)
		}
		for _, a := range x.Args {
			references(a, locals, out)
		}
		return
	case *ObjectExpr:
		for _, r := range x.Resources {
			for _, dec := range r.Decorators {
				references(dec, locals, out)
			}
		}
	}
	children(e, func(c Expr) { references(c, locals, out) })
}

// max-* (MaxNumber*Rule): ARM's limits on a template's declarations.
func (l *linter) maxNumber(f *File, rule, kind string, limit int) {
	var first *Decl
	n := 0
	for _, d := range f.Decls {
		if d.Kind == kind {
			if first == nil {
				first = d
			}
			n++
		}
	}
	if kind == "resource" {
		n = len(f.Resources())
	}
	if n > limit {
		l.report(f, first.Line, "%d %s declarations, more than ARM's limit of %d", n, kind, limit)
	}
}

// nested-deployment-template-scoping (NoSymbolicReferencesInInnerScopedDeploymentResources): a
// Microsoft.Resources/deployments resource whose template is evaluated in its own (inner) scope —
// expressionEvaluationOptions.scope 'inner', the default when the file is compiled with symbolic
// names, as with an extension — cannot refer to the file's symbols in that template.
func (l *linter) nestedDeploymentTemplateScoping(f *File) {
	symbolic := false
	for _, d := range f.Decls {
		symbolic = symbolic || d.Kind == "extension"
	}
	for _, d := range f.Resources() {
		typ, _, _ := strings.Cut(d.FullType(), "@")
		if !strings.EqualFold(typ, "Microsoft.Resources/deployments") {
			continue
		}
		body := ResourceBody(d.Value)
		if body == nil {
			continue
		}
		props, _ := propValue(body, "properties").(*ObjectExpr)
		if props == nil {
			continue
		}
		template := propValue(props, "template")
		if template == nil {
			continue
		}
		inner := symbolic
		if opts, ok := propValue(props, "expressionEvaluationOptions").(*ObjectExpr); ok {
			if s, ok := propValue(opts, "scope").(*StringExpr); ok {
				lit, _ := s.Literal()
				inner = strings.EqualFold(lit, "inner")
			}
		}
		if !inner {
			continue
		}
		used := map[string]bool{}
		references(template, nil, used)
		var names []string
		for name := range used {
			if f.Symbol(name) != nil {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			l.report(f, d.Line, "the template of %s (evaluated in its own scope) refers to %s, a symbol of this file", d.Name, name)
		}
	}
}

func propValue(o *ObjectExpr, key string) Expr {
	for _, p := range o.Props {
		if p.KeyExpr == nil && strings.EqualFold(p.Key, key) {
			return p.Value
		}
	}
	return nil
}

// StripJSONComments blanks the // and /* */ comments of a JSON-with-comments file such as
// bicepconfig.json, outside strings, keeping every other byte (and line) in place.
func StripJSONComments(data []byte) []byte {
	out := append([]byte{}, data...)
	inString := false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			for ; i < len(out) && !(out[i] == '*' && i+1 < len(out) && out[i+1] == '/'); i++ {
				if out[i] != '\n' {
					out[i] = ' '
				}
			}
			if i+1 < len(out) {
				out[i], out[i+1] = ' ', ' '
				i++
			}
		}
	}
	return out
}
