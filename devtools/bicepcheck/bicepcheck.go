// Package bicepcheck checks the deployment's Bicep (infra/) where no Bicep compiler can be
// installed. Its tests:
//
//   - parse every infra/**/*.bicep with tree-sitter-bicep (from npm, see parse.js) and fail on any
//     syntax error;
//   - check every resource declaration against the resource type definitions the Bicep compiler
//     itself uses (testdata/types, from Azure/bicep-types-az and microsoftgraph/msgraph-bicep-types,
//     see CheckTypes), and every module call against the module's parameters;
//   - apply the linter rules bicepconfig.json makes errors, and outputs-should-not-contain-secrets,
//     secure-parameter-default and no-unused-params (Lint);
//   - check that every file the Bicep loads at compile time (loadTextContent and friends) exists,
//     and that the function app's app settings are exactly AppSettingNames.
//
// The package reads Bicep with its own parser (syntax.go): declarations and expressions, enough
// for these checks; tree-sitter-bicep remains the syntax check.
package bicepcheck

import (
	"fmt"
	"path/filepath"
	"strings"
)

// AppSettingNames are the app settings the deployment gives the function app, a contract with the
// code that reads them (main.go). The tests check that the appSettings of the function app in
// infra/main.bicep (and the modules it uses) are exactly these names: AZURE_MANAGED_IDENTITY and
// AZURE_CLIENT_CERTIFICATE are alternatives (only one is set on a given deployment), every other
// one is always set. The Functions host's own settings on Flex Consumption are the three
// AzureWebJobsStorage__* ones; FUNCTIONS_WORKER_RUNTIME is not accepted there.
var AppSettingNames = []string{
	"AzureWebJobsStorage__accountName",
	"AzureWebJobsStorage__credential",
	"AzureWebJobsStorage__clientId",
	"APPLICATIONINSIGHTS_CONNECTION_STRING",
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
	"AZURE_TENANT_ID",
	"GRAPH_CLIENT_ID",
	"AZURE_MANAGED_IDENTITY",
	"AZURE_CLIENT_CERTIFICATE",
	"MATTERMOST_URL",
	"MATTERMOST_TOKEN",
	"MATTERMOST_SLASH_TOKEN",
	"SYNC_SCHEDULE",
	"SYNC_LOOKAHEAD",
	"TENTATIVE_AS_BUSY",
	"SHOW_SUBJECT",
	"NOTIFY_USERS",
	"PRESENCE_SYNC",
	"AUTOMATIC_REPLIES_SYNC",
	"TIME_ZONE",
	"DRY_RUN",
	"SYNC_PAUSED",
	"LOG_LEVEL",
}

// AppSettings returns the names of the app settings of the function app (the resource of type
// Microsoft.Web/sites with an appSettings property) declared in bicepPath or in the local modules
// it uses, in the order they are written. Every entry of the appSettings array must name its
// setting with a string literal (`name: 'X'`); entries may come from variables of the same file
// (e.g. `cond ? settingA : settingB`), whose names are all returned. It is an error if no function
// app, or more than one, declares appSettings.
func AppSettings(bicepPath string) ([]string, error) {
	var found []siteSettings
	if err := walkModules(bicepPath, map[string]bool{}, func(f *File) error {
		sites, err := siteAppSettings(f)
		found = append(found, sites...)
		return err
	}); err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s: no Microsoft.Web/sites resource with appSettings in it or its modules", bicepPath)
	case 1:
		return found[0].names, nil
	default:
		var where []string
		for _, s := range found {
			where = append(where, s.where)
		}
		return nil, fmt.Errorf("%s: more than one site declares appSettings: %s", bicepPath, strings.Join(where, ", "))
	}
}

// A FileLoad is a file a Bicep file reads at compile time.
type FileLoad struct {
	Bicep    string // the Bicep file
	Line     int    // line of the call
	Function string // loadTextContent, loadJsonContent, loadYamlContent or loadFileAsBase64
	Arg      string // the path as written
	Path     string // the path resolved against the Bicep file's folder
}

var loadFunctions = map[string]bool{
	"loadTextContent":  true,
	"loadJsonContent":  true,
	"loadYamlContent":  true,
	"loadFileAsBase64": true,
}

// FileLoads returns the files bicepPath loads with loadTextContent, loadJsonContent,
// loadYamlContent or loadFileAsBase64. A call whose first argument is not a string literal is an
// error.
func FileLoads(bicepPath string) ([]FileLoad, error) {
	f, err := ParseFile(bicepPath)
	if err != nil {
		return nil, err
	}
	var loads []FileLoad
	var bad error
	visit := func(e Expr) bool {
		c, ok := e.(*CallExpr)
		if !ok || bad != nil {
			return bad == nil
		}
		name, ns := c.FuncName()
		if !loadFunctions[name] || ns != nil && !isIdent(ns, "sys") {
			return true
		}
		var arg string
		if len(c.Args) > 0 {
			if s, ok := c.Args[0].(*StringExpr); ok {
				arg, ok = s.Literal()
				if !ok {
					arg = ""
				}
			}
		}
		if arg == "" {
			bad = fmt.Errorf("%s:%d: %s needs a string literal path", bicepPath, c.At, name)
			return false
		}
		loads = append(loads, FileLoad{
			Bicep: bicepPath, Line: c.At, Function: name, Arg: arg,
			Path: filepath.Join(filepath.Dir(bicepPath), filepath.FromSlash(arg)),
		})
		return true
	}
	for _, d := range f.Decls {
		for _, dec := range d.Decorators {
			Walk(dec, visit)
		}
		Walk(d.Value, visit)
	}
	return loads, bad
}

// Modules returns the local files bicepPath uses as modules (registry and template spec modules
// are left out), resolved against its folder.
func Modules(bicepPath string) ([]string, error) {
	f, err := ParseFile(bicepPath)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, d := range f.Decls {
		if p, ok := localModule(d); ok {
			paths = append(paths, p)
		}
	}
	return paths, nil
}

// localModule returns the path of the file a module declaration uses, resolved against its
// file's folder; false for a registry or template spec module (br:, br/, ts:, ts/).
func localModule(d *Decl) (string, bool) {
	if d.Kind != "module" {
		return "", false
	}
	for _, prefix := range []string{"br:", "br/", "ts:", "ts/"} {
		if strings.HasPrefix(d.Ref, prefix) {
			return "", false
		}
	}
	return filepath.Join(filepath.Dir(d.File.Path), filepath.FromSlash(d.Ref)), true
}

type siteSettings struct {
	where string
	names []string
}

func walkModules(path string, seen map[string]bool, visit func(*File) error) error {
	clean := filepath.Clean(path)
	if seen[clean] {
		return nil
	}
	seen[clean] = true
	f, err := ParseFile(clean)
	if err != nil {
		return err
	}
	if err := visit(f); err != nil {
		return err
	}
	for _, d := range f.Decls {
		if m, ok := localModule(d); ok {
			if err := walkModules(m, seen, visit); err != nil {
				return err
			}
		}
	}
	return nil
}

// siteAppSettings finds `resource X 'Microsoft.Web/sites@…' = … { … appSettings: <expr> … }`
// (the property anywhere in the body, not in child resources).
func siteAppSettings(f *File) ([]siteSettings, error) {
	var out []siteSettings
	for _, d := range f.Resources() {
		typ, _, _ := strings.Cut(d.FullType(), "@")
		if d.Existing || !strings.EqualFold(typ, "Microsoft.Web/sites") {
			continue
		}
		body := ResourceBody(d.Value)
		if body == nil {
			continue
		}
		var props []*Property
		var find func(o *ObjectExpr)
		find = func(o *ObjectExpr) {
			for _, p := range o.Props {
				if p.KeyExpr == nil && p.Key == "appSettings" {
					props = append(props, p)
				} else if v, ok := p.Value.(*ObjectExpr); ok {
					find(v)
				}
			}
		}
		find(body)
		for _, p := range props {
			names, err := settingNames(f, p.Value, map[string]bool{})
			if err != nil {
				return nil, fmt.Errorf("%s:%d: appSettings: %v", f.Path, p.At, err)
			}
			out = append(out, siteSettings{where: fmt.Sprintf("%s:%d", f.Path, p.At), names: names})
		}
	}
	return out, nil
}

// settingNames collects the `name: '<literal>'` of the settings e lists: an array of objects, or
// variables of the file holding them, chosen by conditions or joined by concat() or union().
func settingNames(f *File, e Expr, following map[string]bool) ([]string, error) {
	switch x := e.(type) {
	case *ArrayExpr:
		var names []string
		for _, item := range x.Items {
			more, err := settingNames(f, item, following)
			if err != nil {
				return nil, err
			}
			names = append(names, more...)
		}
		return names, nil
	case *ObjectExpr:
		p := x.Prop("name")
		if p == nil {
			return nil, fmt.Errorf("line %d: an app setting without a name", x.At)
		}
		s, ok := p.Value.(*StringExpr)
		lit, isLit := "", false
		if ok {
			lit, isLit = s.Literal()
		}
		if !isLit {
			return nil, fmt.Errorf("%s:%d: an app setting's name must be a string literal", f.Path, p.At)
		}
		return []string{lit}, nil
	case *TernaryExpr:
		a, err := settingNames(f, x.Then, following)
		if err != nil {
			return nil, err
		}
		b, err := settingNames(f, x.Else, following)
		return append(a, b...), err
	case *ParenExpr:
		return settingNames(f, x.X, following)
	case *SpreadExpr:
		return settingNames(f, x.X, following)
	case *CallExpr:
		if name, ns := x.FuncName(); ns == nil && (name == "concat" || name == "union") {
			var names []string
			for _, a := range x.Args {
				more, err := settingNames(f, a, following)
				if err != nil {
					return nil, err
				}
				names = append(names, more...)
			}
			return names, nil
		}
	case *IdentExpr:
		d := f.Symbol(x.Name)
		if d != nil && d.Kind == "var" && !following[x.Name] {
			following[x.Name] = true
			defer delete(following, x.Name)
			return settingNames(f, d.Value, following)
		}
	}
	return nil, fmt.Errorf("line %d: cannot tell which app settings this expression gives (an array of { name: '…' } objects, variables holding them, a condition between them, concat() or union())", e.Line())
}
