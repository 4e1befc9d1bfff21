package bicepcheck

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The type definitions in testdata/types are exactly those of the resource types and API versions
// infra/ declares, from the sources README.md names.
func TestTypeDefinitionsAreWhatInfraUses(t *testing.T) {
	root := repoRoot(t)
	defs := typeDefs(t)
	files, err := ParseDir(filepath.Join(root, "infra"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]string{}
	for _, typ := range UsedResourceTypes(files) {
		used[strings.ToLower(typ)] = typ
	}
	kept := map[string]bool{}
	for _, f := range defs.Manifest.Files {
		for _, r := range f.Resources {
			kept[strings.ToLower(r)] = true
			if used[strings.ToLower(r)] == "" {
				t.Errorf("testdata/types keeps %s (%s), which infra/ no longer uses: run go run ./devtools/bicepcheck/cmd/trimtypes", r, f.File)
			}
		}
	}
	for k, typ := range used {
		if !kept[k] {
			t.Errorf("infra/ uses %s, which testdata/types lacks: run go run ./devtools/bicepcheck/cmd/trimtypes -az <Azure/bicep-types-az> -graph <microsoftgraph/msgraph-bicep-types>", typ)
		}
	}
	// The Graph definitions are those of the extension version bicepconfig.json uses.
	api, version, err := GraphTypesVersion(filepath.Join(root, "infra", "bicepconfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range defs.Manifest.Files {
		if f.Repo == "microsoftgraph/msgraph-bicep-types" {
			if want := fmt.Sprintf("generated/microsoftgraph/microsoft.graph/%s/%s/types.json", api, version); f.Path != want {
				t.Errorf("%s comes from %s; bicepconfig.json's extension is %s:%s (%s)", f.File, f.Path, api, version, want)
			}
		}
	}
	// Sources, commits and licences are named.
	readme, err := os.ReadFile(filepath.Join("testdata", "types", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	repos := map[string]bool{}
	for _, s := range defs.Manifest.Sources {
		repos[s.Repo] = true
		if s.License != "MIT" || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(s.Commit) {
			t.Errorf("manifest source %+v: want the MIT licence and a commit id", s)
		}
		for _, want := range []string{s.Repo, s.Commit, "Licence of " + s.Repo, "MIT License", "Permission is hereby granted"} {
			if !strings.Contains(string(readme), want) {
				t.Errorf("testdata/types/README.md does not say %q", want)
			}
		}
	}
	for _, f := range defs.Manifest.Files {
		if !repos[f.Repo] {
			t.Errorf("%s comes from %s, which is not among the manifest's sources", f.File, f.Repo)
		}
	}
	t.Logf("%d resource types from %d files: %s", len(defs.ResourceNames()), len(defs.Manifest.Files), strings.Join(defs.ResourceNames(), ", "))
}

// The real files pass every check: types, and the linter rules.
func TestInfraPassesTypesAndLinter(t *testing.T) {
	infra := filepath.Join(repoRoot(t), "infra")
	rep, lint := allChecks(t, infra)
	for _, f := range rep.Findings {
		t.Errorf("%s: %s", rel(t, f.File), strings.TrimPrefix(f.String(), f.File+":"))
	}
	for _, f := range lint {
		t.Errorf("%s: %s", rel(t, f.File), strings.TrimPrefix(f.String(), f.File+":"))
	}
	var skipped []string
	for _, s := range rep.Skipped {
		skipped = append(skipped, fmt.Sprintf("%s:%d %s (%s)", rel(t, s.File), s.Line, s.Path, s.Why))
	}
	if rep.Resources == 0 || rep.Properties == 0 {
		t.Errorf("nothing checked: %+v", rep)
	}
	report(t, "Bicep type check: %d resources (%d existing), %d module calls, %d property values checked against the type definitions, %d skipped (value not known before deployment)%s",
		rep.Resources, rep.Existing, rep.Modules, rep.Properties, len(rep.Skipped), listed(skipped))
	report(t, "Bicep linter rules applied as errors: %s", strings.Join(lintRules(t), ", "))
}

func listed(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return ": " + strings.Join(items, "; ")
}

// Every rule bicepconfig.json (or Bicep's defaults) makes an error is one bicepcheck implements:
// otherwise implement it in lint.go, or lower it in bicepconfig.json with a comment saying why.
func TestErrorRulesAreImplemented(t *testing.T) {
	cfg, err := ReadLintConfig(filepath.Join(repoRoot(t), "infra", "bicepconfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range cfg.ErrorRules() {
		if Rules[rule] == nil {
			t.Errorf("infra/bicepconfig.json makes linter rule %s an error, and bicepcheck does not implement it: implement it in devtools/bicepcheck/lint.go, or lower it in bicepconfig.json with a comment why", rule)
		}
	}
	if !slices.Contains(cfg.ErrorRules(), "outputs-should-not-contain-secrets") {
		t.Error("bicepconfig.json no longer raises outputs-should-not-contain-secrets to error")
	}
	// Comments are allowed in bicepconfig.json.
	path := filepath.Join(t.TempDir(), "bicepconfig.json")
	os.WriteFile(path, []byte(`{
  // a comment, "with quotes"
  "analyzers": {"core": {"rules": {
    /* lowered: see why */ "max-outputs": {"level": "warning"},
    "no-unused-params": {"level": "error"} // raised
  }}}
}`), 0o644)
	cfg, err = ReadLintConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Level("max-outputs") != "warning" || cfg.Level("no-unused-params") != "error" || cfg.Level("max-params") != "error" || cfg.Level("use-recent-api-versions") != "off" {
		t.Errorf("levels: %+v", cfg.Levels)
	}
}

// A broken copy of a real file: one thing changed in a copy of infra/, and what the checks must
// report for it that they do not report for the real files.
type breakage struct {
	name string
	file string // relative to infra/
	old  string // the text to replace, exactly once; a regexp of a whole line if it starts with ^; "" appends
	new  string
	want []wantFinding
}

type wantFinding struct {
	check string // "types" or the linter rule
	at    string // the finding's line holds this (the nearest such line to the change); "": the changed line
	text  string // in the message
}

func TestTypeCheckReportsBrokenCopies(t *testing.T) {
	runBreakages(t, []breakage{
		{name: "unknown property", file: "modules/keyvault.bicep",
			old: "enableRbacAuthorization: true", new: "enableRbacAuthorisation: true",
			want: []wantFinding{{"types", "", "properties: unknown property enableRbacAuthorisation"}}},
		{name: "property name in the wrong case", file: "modules/monitoring.bicep",
			old: "DisableLocalAuth: true", new: "disableLocalAuth: true",
			want: []wantFinding{{"types", "", "unknown property disableLocalAuth: the definition spells it DisableLocalAuth"}}},
		{name: "string for a bool", file: "modules/storage.bicep",
			old: "allowBlobPublicAccess: false", new: "allowBlobPublicAccess: 'false'",
			want: []wantFinding{{"types", "", "properties.allowBlobPublicAccess: expects bool, got 'false'"}}},
		{name: "value outside an enum", file: "modules/storage.bicep",
			old: "accessTier: 'Hot'", new: "accessTier: 'hot'",
			want: []wantFinding{{"types", "", "properties.accessTier: 'hot' is not one of 'Hot' | 'Cool' | 'Premium' | 'Cold'"}}},
		{name: "value outside an enum, in a nested object", file: "modules/function-app.bicep",
			old: "type: 'UserAssigned'", new: "type: 'UserAssignedIdentity'",
			want: []wantFinding{{"types", "", "identity.type: 'UserAssignedIdentity' is not one of"}}},
		{name: "string too long", file: "modules/alerts.bicep",
			old: "groupShortName: 'calstatus'", new: "groupShortName: 'calstatus-alerts'",
			want: []wantFinding{{"types", "", "properties.groupShortName: 'calstatus-alerts' has 16 characters, outside length <= 12"}}},
		{name: "string for an int, in a loop over a variable's array", file: "modules/alerts.bicep",
			old: "severity: 3", new: "severity: 'low'",
			want: []wantFinding{{"types", "severity: rule.severity", "properties.severity: expects int, got 'low' (value from line"}}},
		{name: "required property missing", file: "modules/monitoring.bicep",
			old: "Application_Type: 'web'", new: "// Application_Type: 'web'",
			want: []wantFinding{{"types", "properties: {", "properties: missing required property Application_Type"}}},
		{name: "read-only property set", file: "modules/function-app.bicep",
			old: "httpsOnly: true", new: "defaultHostName: 'calstatus.example.org'",
			want: []wantFinding{{"types", "", "properties.defaultHostName is read-only"}}},
		{name: "discriminated type", file: "modules/function-app.bicep",
			old: "name: 'ftp'", new: "name: 'sftp'",
			want: []wantFinding{{"types", "", "name 'sftp' is not one of 'ftp', 'scm'"}}},
		{name: "API version with no type definition", file: "modules/monitoring.bicep",
			old: "'Microsoft.Insights/components@2020-02-02'", new: "'Microsoft.Insights/components@2020-02-03'",
			want: []wantFinding{{"types", "", "no type definition of Microsoft.Insights/components@2020-02-03"}}},
		{name: "module parameter misspelt", file: "main.bicep",
			old: "planName: 'plan-calstatus-${resourceToken}'", new: "planNames: 'plan-calstatus-${resourceToken}'",
			want: []wantFinding{
				{"types", "", "module functionApp: modules/function-app.bicep has no parameter planNames"},
				{"types", "module functionApp", "module functionApp: missing parameter planName"},
			}},
		{name: "resource name from a runtime property", file: "modules/keyvault.bicep",
			old: "guid(vault.id, principalId, keyVaultSecretsUser)", new: "guid(vault.properties.vaultUri, principalId, keyVaultSecretsUser)",
			want: []wantFinding{{"types", "", "name needs a value known when the deployment starts (BCP120); vault.properties.vaultUri is not (resource vault: only apiVersion, id, name, type are known at the start)"}}},
		{name: "module name from another module's output, through a variable", file: "main.bicep",
			new:  "var storageName = storage.outputs.name\nmodule again 'modules/identity.bicep' = {\n  name: 'identity-${storageName}'\n  scope: rg\n  params: {\n    name: 'id-again'\n    location: location\n    tags: tags\n  }\n}\n",
			want: []wantFinding{{"types", "name: 'identity-", "name needs a value known when the deployment starts (BCP120); storage.outputs.name (through variable storageName) is not (module storage: only name is known at the start)"}}},
		{name: "Graph resource condition on a property known only once deployed", file: "modules/app-registration.bicep",
			old: "if (grantGraphPermission)", new: "if (grantGraphPermission && !empty(servicePrincipal.appId))",
			want: []wantFinding{{"types", "", "the condition of graphPermissionGrants needs a value known when the deployment starts (BCP120); servicePrincipal.appId is not (resource servicePrincipal: none of its properties is known at the start)"}}},
		{name: "module parameter of the wrong type", file: "main.bicep",
			old: "maximumInstanceCount: maximumInstanceCount", new: "maximumInstanceCount: string(maximumInstanceCount)",
			want: []wantFinding{{"types", "", "params.maximumInstanceCount: expects int, got a string"}}},
	})
}

func TestGraphTypeCheckReportsBrokenCopies(t *testing.T) {
	runBreakages(t, []breakage{
		{name: "Graph property misspelt", file: "modules/app-registration.bicep",
			old: "signInAudience: 'AzureADMyOrg'", new: "signinAudience: 'AzureADMyOrg'",
			want: []wantFinding{{"types", "", "unknown property signinAudience: the definition spells it signInAudience"}}},
		{name: "Graph guid too short (the variable is used twice)", file: "modules/app-registration.bicep",
			old: "'8ba4a692-bc31-4128-9094-475872af8a53'", new: "'8ba4a692-bc31-4128-9094-475872af8a5'",
			want: []wantFinding{
				{"types", "appRoleId: roleId", "appRoleId: '8ba4a692-bc31-4128-9094-475872af8a5' has 35 characters, outside length 36..36"},
				{"types", "appRoleId: roleId", "appRoleId: '8ba4a692-bc31-4128-9094-475872af8a5' does not match the pattern"},
				{"types", "id: roleId", "requiredResourceAccess[0].resourceAccess[*].id: '8ba4a692-bc31-4128-9094-475872af8a5' has 35 characters"},
				{"types", "id: roleId", "requiredResourceAccess[0].resourceAccess[*].id: '8ba4a692-bc31-4128-9094-475872af8a5' does not match the pattern"},
			}},
		{name: "Graph presence role id malformed (asked for and granted only with the presence settings)", file: "modules/app-registration.bicep",
			old: "'a70e0c2d-e793-494c-94c4-118fa0a67f42'", new: "'Presence.Read.All'",
			want: []wantFinding{
				{"types", "appRoleId: roleId", "appRoleId: 'Presence.Read.All' has 17 characters, outside length 36..36"},
				{"types", "appRoleId: roleId", "appRoleId: 'Presence.Read.All' does not match the pattern"},
				{"types", "id: roleId", "requiredResourceAccess[0].resourceAccess[*].id: 'Presence.Read.All' has 17 characters"},
				{"types", "id: roleId", "requiredResourceAccess[0].resourceAccess[*].id: 'Presence.Read.All' does not match the pattern"},
			}},
		{name: "Graph required property missing", file: "modules/app-registration.bicep",
			old: "displayName: displayName", new: "notes: displayName",
			want: []wantFinding{{"types", "resource app ", "resource body: missing required property displayName"}}},
		{name: "existing resource sets more than its name", file: "modules/app-registration.bicep",
			old: "appId: microsoftGraphAppId", new: "displayName: 'Microsoft Graph'",
			want: []wantFinding{
				{"types", "", "existing resource microsoftGraph: displayName cannot be set on an existing resource (only appId, parent, scope)"},
				{"types", "resource microsoftGraph", "existing resource microsoftGraph: missing appId, which names the resource"},
			}},
	})
}

func TestLinterReportsBrokenCopies(t *testing.T) {
	runBreakages(t, []breakage{
		{name: "output referencing a @secure() parameter inside empty() (the committed keyvault.bicep of issue 18)", file: "modules/keyvault.bicep",
			old:  `^output mattermostSlashTokenSecretUri string = .*$`,
			new:  `output mattermostSlashTokenSecretUri string = empty(mattermostSlashToken) ? '' : '${vault.properties.vaultUri}secrets/mattermost-slash-token'`,
			want: []wantFinding{{"outputs-should-not-contain-secrets", "", "Found possible secret: secure value 'mattermostSlashToken'"}}},
		{name: "output through a variable holding a @secure() parameter", file: "main.bicep",
			new:  "var tokenCopy = mattermostToken\noutput TOKEN_COPY string = tokenCopy\n",
			want: []wantFinding{{"outputs-should-not-contain-secrets", "output TOKEN_COPY", "secure value 'tokenCopy'"}}},
		{name: "output calling list*() on a resource", file: "modules/storage.bicep",
			new:  "output key string = account.listKeys().keys[0].value\n",
			want: []wantFinding{{"outputs-should-not-contain-secrets", "output key", "function 'listKeys'"}}},
		{name: "output of a property the type definition marks sensitive", file: "modules/function-app.bicep",
			new: "output storageKey string = site.properties.siteConfig.azureStorageAccounts.share.accessKey\noutput siteConfig object = site.properties.siteConfig\n",
			want: []wantFinding{
				{"outputs-should-not-contain-secrets", "output storageKey", "secure value 'site.properties.siteConfig.azureStorageAccounts.share.accessKey'"},
				{"outputs-should-not-contain-secrets", "output siteConfig", "secure value 'site.properties.siteConfig.azureStorageAccounts.*.accessKey'"},
			}},
		{name: "output named like a password", file: "modules/identity.bicep",
			new:  "output adminPassword string = identity.name\n",
			want: []wantFinding{{"outputs-should-not-contain-secrets", "", "output name 'adminPassword' suggests a secret"}}},
		{name: "@secure() parameter with a default", file: "main.bicep",
			old: "param mattermostSlashToken string = ''", new: "param mattermostSlashToken string = 'team=token'",
			want: []wantFinding{{"secure-parameter-default", "", "Secure parameters should not have hardcoded defaults (except for empty or newGuid()): param mattermostSlashToken"}}},
		{name: "unused parameter", file: "modules/monitoring.bicep",
			old: "retentionInDays: retentionInDays", new: "retentionInDays: 30",
			want: []wantFinding{{"no-unused-params", "param retentionInDays", `Parameter "retentionInDays" is declared but never used.`}}},
	})
}

// The rules on small files: what they must and must not report.
func TestLinterRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) *File {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	mod := write("mod.bicep", `@secure()
output token string = 'x'
output plain string = 'y'
`)
	main := write("main.bicep", `@secure()
param secret string
@secure()
param withGuid string = newGuid()
@secure()
param emptyObject object = {}
@secure()
param fromSecure string = secret
param shadowed string
param usedInDecorator int = 1
@minValue(usedInDecorator)
param usesAnother int = 2
module m 'mod.bicep' = {
  name: 'm'
}
var safe = '${secret}x'
var items = [for shadowed in range(0, usesAnother): shadowed]
@secure()
output fine string = secret
output viaModule string = m.outputs.token
output plainFromModule string = m.outputs.plain
output allOutputs object = m.outputs
output interpolatedVar string = safe
output lambda array = map(items, secret => secret)
#disable-next-line outputs-should-not-contain-secrets // on purpose
output allowed string = secret
output listed object = listSecrets('id', '2020-01-01')
@secure()
output refs object = {
  a: withGuid
  b: emptyObject
  c: fromSecure
}
`)
	findings, err := Lint(NewProject([]*File{mod, main}, nil), []string{"outputs-should-not-contain-secrets", "secure-parameter-default", "no-unused-params"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, fmt.Sprintf("%s:%d %s %s", filepath.Base(f.File), f.Line, f.Check, f.Message))
	}
	want := []string{
		"main.bicep:20 outputs-should-not-contain-secrets Outputs should not contain secrets. Found possible secret: secure value 'm.outputs.token' (output viaModule)",
		"main.bicep:22 outputs-should-not-contain-secrets Outputs should not contain secrets. Found possible secret: secure value 'm.outputs.token' (output allOutputs)",
		"main.bicep:27 outputs-should-not-contain-secrets Outputs should not contain secrets. Found possible secret: function 'listSecrets' (output listed)",
		"main.bicep:9 no-unused-params Parameter \"shadowed\" is declared but never used.",
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// max-outputs and friends.
	var b strings.Builder
	for i := 0; i < 65; i++ {
		fmt.Fprintf(&b, "output o%d int = %d\n", i, i)
	}
	many := write("many.bicep", b.String())
	findings, _ = Lint(NewProject([]*File{many}, nil), []string{"max-outputs", "max-params"})
	if len(findings) != 1 || findings[0].Check != "max-outputs" || findings[0].Line != 1 {
		t.Errorf("65 outputs: %v", findings)
	}

	nested := write("nested.bicep", `extension microsoftGraphV1
param p string
resource d 'Microsoft.Resources/deployments@2022-09-01' = {
  name: 'inner'
  properties: {
    mode: 'Incremental'
    template: {
      resources: [
        {
          name: p
        }
      ]
    }
  }
}
`)
	findings, _ = Lint(NewProject([]*File{nested}, nil), []string{"nested-deployment-template-scoping"})
	if len(findings) != 1 || !strings.Contains(findings[0].Message, "refers to p") || findings[0].Line != 3 {
		t.Errorf("nested deployment: %v", findings)
	}
}

// The parser reads the Bicep the files use, and names the line of what it cannot read.
func TestParser(t *testing.T) {
	f, err := Parse("t.bicep", `targetScope = 'subscription'
import {a, b} from 'types.bicep'
extension microsoftGraphV1
@sys.description('x')
@allowed([
  'a'
  'b'
])
param p string = 'a'
param q 'x' | 'y'
param r string[]?
param o {
  a: string
}
var s = '''
multi ${line}'''
var t = 'a${ {x: '}'}.x }b${p}'
var u = [for (x, i) in range(0, 3): {
  v: x + i
}]
var w = map(u, e => e.v)
var w2 = reduce(u, 0, (acc, e) => acc + e.v)
var x = { a: 1, b: [1, 2], ...o }
var y = r[?0] ?? o.?a ?? p!
var z = !empty(p) && (length(p) > 1 || -1 < 0) ? p =~ 'A' : 'b'
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st'

  resource blob 'blobServices' existing = {
    name: 'default'
  }
}
resource loop 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in ['a']: if (true) {
  parent: st::blob
  name: c
}]
output out resource 'Microsoft.Storage/storageAccounts@2023-05-01' = st
output n int = az.length(st::blob.name)
`)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range f.Decls {
		kinds = append(kinds, d.Kind+" "+d.Name)
	}
	want := "targetScope ,import ,extension ,param p,param q,param r,param o,var s,var t,var u,var w,var w2,var x,var y,var z,resource st,resource loop,output out,output n"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("declarations:\n%s\nwant\n%s", got, want)
	}
	if p := f.Find("param", "p"); len(p.Decorators) != 2 || p.Secure() || p.Type.Kind != "string" {
		t.Errorf("param p: %+v", p)
	}
	if q := f.Find("param", "q"); !slices.Equal(q.Type.Literals, []string{"x", "y"}) {
		t.Errorf("param q: %+v", q.Type)
	}
	if r := f.Find("param", "r"); r.Type.Kind != "array" || !r.Type.Nullable {
		t.Errorf("param r: %+v", r.Type)
	}
	if s := f.Find("var", "s").Value.(*StringExpr); s.Parts[0] != "multi ${line}" {
		t.Errorf("multi-line string: %q", s.Parts)
	}
	if s := f.Find("var", "t").Value.(*StringExpr); len(s.Exprs) != 2 || s.Parts[0] != "a" || s.Parts[1] != "b" {
		t.Errorf("interpolation: %+v", s)
	}
	loop := f.Resources()
	if len(loop) != 3 || loop[1].FullType() != "Microsoft.Storage/storageAccounts/blobServices@2023-05-01" || loop[2].Name != "loop" {
		t.Errorf("resources: %v", loop)
	}
	used := map[string]bool{}
	references(f.Find("var", "u").Value, nil, used)
	if used["x"] || used["i"] || used["range"] {
		t.Errorf("references of u: %v (loop variables are not references; function names neither)", used)
	}

	for src, line := range map[string]int{
		"param p string\nvar x = {\n  a: 1 b: 2\n}\n": 3,
		"var x = [\n  1\n":                            3,
		"var x = 'abc\n":                              1,
		"resource r 'T@1' = {\n  name: 'a'\n}  x\n":   3,
		"var x = 1\nbogus y = 2\n":                    2,
		"var x = '${'\n":                              1,
		"var ok = 1\n\nvar y = 1 +\n":                 4,
		"var x = {\n  a: 1\n  'b${1}': 2\n  c d\n}\n": 4,
	} {
		_, err := Parse("bad.bicep", src)
		if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("bad.bicep:%d:", line)) {
			t.Errorf("%q: err = %v, want one at line %d", src, err, line)
		}
	}
}

// helpers

func typeDefs(t *testing.T) *TypeDefs {
	t.Helper()
	defs, err := LoadTypeDefs(filepath.Join("testdata", "types"))
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// lintRules: the rules the checks apply, as errors: those bicepconfig.json makes errors, and
// RequiredRules.
func lintRules(t *testing.T) []string {
	t.Helper()
	cfg, err := ReadLintConfig(filepath.Join(repoRoot(t), "infra", "bicepconfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	rules := cfg.ErrorRules()
	for _, r := range RequiredRules {
		if !slices.Contains(rules, r) {
			rules = append(rules, r)
		}
	}
	sort.Strings(rules)
	return rules
}

// allChecks runs the type check and the linter rules on the Bicep files under dir.
func allChecks(t *testing.T, dir string) (*TypeReport, []Finding) {
	t.Helper()
	files, err := ParseDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProject(files, typeDefs(t))
	findings, err := Lint(p, lintRules(t))
	if err != nil {
		t.Fatal(err)
	}
	return CheckTypes(p), findings
}

// copyInfra copies infra/ into a temporary folder.
func copyInfra(t *testing.T) string {
	t.Helper()
	src := filepath.Join(repoRoot(t), "infra")
	dst := filepath.Join(t.TempDir(), "infra")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, r), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, r), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// keyed renders findings relative to dir, without their lines, to compare the broken copy's with
// the real files'.
func keyed(dir string, fs []Finding) map[string]int {
	out := map[string]int{}
	for _, f := range fs {
		r, _ := filepath.Rel(dir, f.File)
		out[r+"\x00"+f.Check+"\x00"+f.Message]++
	}
	return out
}

func runBreakages(t *testing.T, cases []breakage) {
	baseDir := copyInfra(t)
	baseTypes, baseLint := allChecks(t, baseDir)
	base := keyed(baseDir, append(baseTypes.Findings, baseLint...))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyInfra(t)
			path := filepath.Join(dir, filepath.FromSlash(c.file))
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			src := string(data)
			var start int
			switch {
			case c.old == "":
				if !strings.HasSuffix(src, "\n") {
					src += "\n"
				}
				start = len(src)
				src += c.new
			case strings.HasPrefix(c.old, "^"):
				re := regexp.MustCompile("(?m)" + c.old)
				locs := re.FindAllStringIndex(src, -1)
				if len(locs) != 1 {
					t.Fatalf("infra/%s has %d lines matching %s, want 1: update this test's break to the file", c.file, len(locs), c.old)
				}
				start = locs[0][0]
				src = src[:start] + c.new + src[locs[0][1]:]
			default:
				if n := strings.Count(src, c.old); n != 1 {
					t.Fatalf("infra/%s holds %q %d times, want once: update this test's break to the file", c.file, c.old, n)
				}
				start = strings.Index(src, c.old)
				src = src[:start] + c.new + src[start+len(c.old):]
			}
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			changed := strings.Count(src[:start], "\n") + 1
			newEnd := changed + strings.Count(c.new, "\n")
			lines := strings.Split(src, "\n")
			lineOf := func(at string) int {
				if at == "" {
					return changed
				}
				best := -1
				for i, l := range lines {
					n := i + 1
					if !strings.Contains(l, at) {
						continue
					}
					if n >= changed && n <= newEnd {
						return n
					}
					if best < 0 || abs(n-changed) < abs(best-changed) {
						best = n
					}
				}
				if best < 0 {
					t.Fatalf("no line of the broken infra/%s holds %q", c.file, at)
				}
				return best
			}

			types, lint := allChecks(t, dir)
			all := append(types.Findings, lint...)
			var fresh []Finding
			counted := map[string]int{}
			for _, f := range all {
				r, _ := filepath.Rel(dir, f.File)
				k := r + "\x00" + f.Check + "\x00" + f.Message
				counted[k]++
				if counted[k] > base[k] {
					fresh = append(fresh, f)
				}
			}
			matched := make([]bool, len(fresh))
			for _, w := range c.want {
				line := lineOf(w.at)
				ok := false
				for i, f := range fresh {
					if !matched[i] && f.Check == w.check && f.Line == line && filepath.Clean(f.File) == filepath.Clean(path) && strings.Contains(f.Message, w.text) {
						matched[i], ok = true, true
						break
					}
				}
				if !ok {
					t.Errorf("want infra/%s:%d: %s: …%s…; the broken copy's new findings:\n%s", c.file, line, w.check, w.text, render(dir, fresh))
				}
			}
			for i, f := range fresh {
				if !matched[i] {
					t.Errorf("unexpected finding on the broken copy: %s", render(dir, []Finding{f}))
				}
			}
			if !t.Failed() {
				t.Logf("%s", render(dir, fresh))
			}
		})
	}
}

func render(dir string, fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		r, _ := filepath.Rel(dir, f.File)
		fmt.Fprintf(&b, "  infra/%s:%d: %s: %s\n", filepath.ToSlash(r), f.Line, f.Check, f.Message)
	}
	if b.Len() == 0 {
		return "  (none)\n"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// report logs a result and appends it to the test report (CALSTATUS_TEST_REPORT, which `make test`
// prints at the end, since go test shows passing tests' logs only with -v).
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf(format, args...)
	path := os.Getenv("CALSTATUS_TEST_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("test report: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s: %s\n", t.Name(), fmt.Sprintf(format, args...))
}
