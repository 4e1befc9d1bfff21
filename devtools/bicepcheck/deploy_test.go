package bicepcheck_test

// Checks of what a first deployment needs and what reading the deploy against Microsoft's docs and
// the azd and Bicep sources found (issue 18): things no syntax check sees. Each reads the committed
// files as text; the Bicep helpers below blank comments first, so commented-out code never counts.

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the folder holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's working directory")
		}
		dir = parent
	}
}

// bicepFiles lists infra/**/*.bicep, relative to the repository.
func bicepFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	root := repoRoot(t)
	err := filepath.WalkDir(filepath.Join(root, "infra"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".bicep") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no Bicep files under infra (%v)", err)
	}
	return files
}

func readFile(t *testing.T, parts ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(append([]string{repoRoot(t)}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// blankComments returns Bicep source with its comments replaced by spaces (newlines kept, so
// offsets and line numbers stay), strings and interpolations left as they are.
func blankComments(src string) string { return blankSource(src, false) }

// blankCommentsAndStrings also blanks the text of strings (interpolated expressions stay).
func blankCommentsAndStrings(src string) string { return blankSource(src, true) }

func blankSource(src string, strs bool) string {
	out := []byte(src)
	const (
		code = iota
		str
	)
	type frame struct{ mode, depth int }
	stack := []frame{{code, 0}}
	blank := func(from, to int) {
		for k := from; k < to && k < len(out); k++ {
			if out[k] != '\n' {
				out[k] = ' '
			}
		}
	}
	for i := 0; i < len(src); i++ {
		top := &stack[len(stack)-1]
		if top.mode == str {
			switch {
			case src[i] == '\\':
				if strs {
					blank(i, i+2)
				}
				i++
			case src[i] == '\'':
				stack = stack[:len(stack)-1]
			case strings.HasPrefix(src[i:], "${"):
				stack = append(stack, frame{code, 0})
				i++
			default:
				if strs {
					blank(i, i+1)
				}
			}
			continue
		}
		switch {
		case strings.HasPrefix(src[i:], "//"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			blank(i, i+end)
			i += end - 1
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				end = len(src) - i - 2
			}
			blank(i, i+2+end+2)
			i += 2 + end + 1
		case strings.HasPrefix(src[i:], "'''"):
			end := strings.Index(src[i+3:], "'''")
			if end < 0 {
				return string(out)
			}
			if strs {
				blank(i+3, i+3+end)
			}
			i += 3 + end + 2
		case src[i] == '\'':
			stack = append(stack, frame{str, 0})
		case src[i] == '{':
			top.depth++
		case src[i] == '}':
			if top.depth == 0 && len(stack) > 1 {
				stack = stack[:len(stack)-1] // the end of an interpolation
			} else {
				top.depth--
			}
		}
	}
	return string(out)
}

// bicepCode reads a Bicep file under infra/ with its comments blanked.
func bicepCode(t *testing.T, rel string) string {
	t.Helper()
	return blankComments(readFile(t, "infra", rel))
}

// closing returns the index of the bracket closing the one at open (skipping strings).
func closing(src string, open int) int {
	pairs := map[byte]byte{'{': '}', '(': ')', '[': ']'}
	var want []byte
	for i := open; i < len(src); i++ {
		switch c := src[i]; {
		case c == '\'':
			for i++; i < len(src) && src[i] != '\''; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case pairs[c] != 0:
			want = append(want, pairs[c])
		case len(want) > 0 && c == want[len(want)-1]:
			want = want[:len(want)-1]
			if len(want) == 0 {
				return i
			}
		}
	}
	return -1
}

// A declaration is a resource or module of a Bicep file.
type declaration struct {
	kind, name, target string // "resource" or "module", symbolic name, type@version or module path
	existing           bool
	condition          string // the if (…) expression, "" when unconditional
	body               string // from { to its }
}

var declRE = regexp.MustCompile(`(?m)^[ \t]*(resource|module)[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]+'([^']+)'[ \t]*(existing)?[ \t]*=[ \t]*`)

// declarations lists the resources and modules of Bicep code (comments blanked), nested ones too.
func declarations(code string) []declaration {
	var out []declaration
	for _, m := range declRE.FindAllStringSubmatchIndex(code, -1) {
		d := declaration{kind: code[m[2]:m[3]], name: code[m[4]:m[5]], target: code[m[6]:m[7]], existing: m[8] >= 0}
		rest := m[1]
		if strings.HasPrefix(code[rest:], "[") { // a loop: look at its body
			rest++
			for rest < len(code) && code[rest] != '{' && code[rest] != ':' {
				rest++
			}
			if rest < len(code) && code[rest] == ':' { // [for x in y: if (…) {…}]
				rest++
				for rest < len(code) && strings.ContainsRune(" \t\r\n", rune(code[rest])) {
					rest++
				}
			}
		}
		if strings.HasPrefix(code[rest:], "if") {
			open := strings.IndexByte(code[rest:], '(')
			if open >= 0 {
				end := closing(code, rest+open)
				if end > 0 {
					d.condition = strings.TrimSpace(code[rest+open+1 : end])
					rest = end + 1
				}
			}
		}
		if open := strings.IndexByte(code[rest:], '{'); open >= 0 {
			if end := closing(code, rest+open); end > 0 {
				d.body = code[rest+open : end+1]
			}
		}
		out = append(out, d)
	}
	return out
}

func ofType(decls []declaration, typeSuffix string) []declaration {
	var out []declaration
	for _, d := range decls {
		typ, _, _ := strings.Cut(d.target, "@")
		if d.kind == "resource" && (typ == typeSuffix || strings.HasSuffix(typ, "/"+typeSuffix)) {
			out = append(out, d)
		}
	}
	return out
}

// 1. azd runs a service with `language: custom` only with the alpha feature on (azd ≥ 1.20, still
// gated): without `azd config set alpha.language.custom on` (or AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=on)
// every azd command in this folder stops with "service is using language 'custom' (alpha) but it is
// not enabled". The README says so before its first azd command that reads azure.yaml, and so do
// azure.yaml's comment and infra/README.md.
func TestAzdAlphaFeatureForLanguageCustom(t *testing.T) {
	yaml := readFile(t, "azure.yaml")
	if !regexp.MustCompile(`(?m)^\s+language:\s*custom\s*$`).MatchString(yaml) {
		t.Skip("azure.yaml has no service with language: custom")
	}
	for _, p := range alphaStepProblems("README.md", readFile(t, "README.md")) {
		t.Error(p)
	}
	for _, p := range alphaStepProblems("infra/README.md", readFile(t, "infra", "README.md")) {
		t.Error(p)
	}
	var comment strings.Builder
	for _, line := range strings.Split(yaml, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			comment.WriteString(line + "\n")
		}
	}
	if !strings.Contains(comment.String(), "azd config set alpha.language.custom on") {
		t.Error("azure.yaml uses language: custom, and its comment does not say to run `azd config set alpha.language.custom on` first")
	}
}

const alphaCommand = "azd config set alpha.language.custom on"

// alphaStepProblems: a Markdown file's shell blocks must run the alpha command (or set
// AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=on) before any azd command that loads the project.
func alphaStepProblems(name, md string) []string {
	inBlock := false
	enabled := false
	for i, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inBlock = !inBlock
			continue
		}
		if strings.Contains(line, alphaCommand) || strings.Contains(line, "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=on") {
			enabled = true
			continue
		}
		if !inBlock || !strings.HasPrefix(trimmed, "azd ") {
			continue
		}
		// azd auth, azd config and azd version do not load azure.yaml.
		if verb := strings.Fields(trimmed)[1]; verb == "auth" || verb == "config" || verb == "version" {
			continue
		}
		if !enabled {
			return []string{name + ":" + strconv.Itoa(i+1) + ": `" + trimmed + "` comes before `" + alphaCommand +
				"` (azure.yaml's language: custom is an azd alpha feature: without it azd stops)"}
		}
		return nil
	}
	if !enabled {
		return []string{name + " never says `" + alphaCommand + "` (azure.yaml's language: custom is an azd alpha feature)"}
	}
	return nil
}

// telemetryTypes maps an Application Insights table to its telemetry type, as host.json's
// samplingSettings names it.
var telemetryTypes = map[string]string{
	"traces": "Trace", "requests": "Request", "exceptions": "Exception", "dependencies": "Dependency",
	"customEvents": "Event", "pageViews": "PageView", "customMetrics": "Metric",
}

// alertQueries returns the queries alerts.bicep loads, by file name.
func alertQueries(t *testing.T) map[string]string {
	t.Helper()
	code := bicepCode(t, filepath.Join("modules", "alerts.bicep"))
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`loadTextContent\('([^']+)'\)`).FindAllStringSubmatch(code, -1) {
		path := filepath.Join(repoRoot(t), "infra", "modules", filepath.FromSlash(m[1]))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(path)] = string(data)
	}
	if len(out) == 0 {
		t.Fatal("alerts.bicep loads no query")
	}
	return out
}

// sampled reports whether host.json's Application Insights sampling may drop telemetry of type typ.
func sampled(hostJSON []byte, typ string) (bool, error) {
	var host struct {
		Logging struct {
			ApplicationInsights struct {
				SamplingSettings *struct {
					IsEnabled     *bool  `json:"isEnabled"`
					ExcludedTypes string `json:"excludedTypes"`
					IncludedTypes string `json:"includedTypes"`
				} `json:"samplingSettings"`
			} `json:"applicationInsights"`
		} `json:"logging"`
	}
	if err := json.Unmarshal(hostJSON, &host); err != nil {
		return false, err
	}
	s := host.Logging.ApplicationInsights.SamplingSettings
	if s == nil {
		// The host's default: sampling on, excluding Request and Exception.
		return !strings.EqualFold(typ, "Request") && !strings.EqualFold(typ, "Exception"), nil
	}
	if s.IsEnabled != nil && !*s.IsEnabled {
		return false, nil
	}
	has := func(list string) bool {
		return slices.ContainsFunc(strings.Split(list, ";"), func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), typ) })
	}
	if has(s.ExcludedTypes) {
		return false, nil
	}
	return strings.TrimSpace(s.IncludedTypes) == "" || has(s.IncludedTypes), nil
}

// 3. Sampling must keep every row the alerts count: a sampled-away "cycle summary" fires
// no-completed-cycle, and sums undercount.
func TestSamplingKeepsWhatAlertsCount(t *testing.T) {
	host := readFile(t, "host.json")
	for name, q := range alertQueries(t) {
		table, _, _ := strings.Cut(strings.TrimSpace(q), "\n")
		table = strings.TrimSpace(table)
		typ, ok := telemetryTypes[table]
		if !ok {
			t.Errorf("%s reads table %q, whose telemetry type this check does not know", name, table)
			continue
		}
		s, err := sampled([]byte(host), typ)
		if err != nil {
			t.Fatalf("host.json: %v", err)
		}
		if s {
			t.Errorf("%s counts %s, which host.json's Application Insights sampling may drop: add %s to logging.applicationInsights.samplingSettings.excludedTypes", name, table, typ)
		}
	}
}

func TestSampledReadsHostJSON(t *testing.T) {
	for _, c := range []struct {
		json string
		typ  string
		want bool
	}{
		{`{"logging":{"applicationInsights":{"samplingSettings":{"isEnabled":true,"excludedTypes":"Request;Exception"}}}}`, "Trace", true},
		{`{"logging":{"applicationInsights":{"samplingSettings":{"isEnabled":true,"excludedTypes":"Request;Exception"}}}}`, "Request", false},
		{`{"logging":{"applicationInsights":{"samplingSettings":{"isEnabled":true,"excludedTypes":"Request; exception ;Trace"}}}}`, "Trace", false},
		{`{"logging":{"applicationInsights":{"samplingSettings":{"isEnabled":false}}}}`, "Trace", false},
		{`{"logging":{"applicationInsights":{"samplingSettings":{"includedTypes":"Dependency"}}}}`, "Trace", false},
		{`{"logging":{"applicationInsights":{"samplingSettings":{"includedTypes":"Trace;Dependency"}}}}`, "Trace", true},
		{`{"logging":{}}`, "Trace", true},
	} {
		got, err := sampled([]byte(c.json), c.typ)
		if err != nil || got != c.want {
			t.Errorf("sampled(%s, %s) = %v, %v; want %v", c.json, c.typ, got, err, c.want)
		}
	}
}

// Lines the handler writes only in an invocation that fails. The Functions host drops a failed
// invocation's Logs; the handler copies them to stderr, which reaches Application Insights (if at
// all) as Host.Function.Console traces — a path nobody has seen work on Flex Consumption. An alert
// must not depend on them.
var failedInvocationLines = map[string]string{
	"invocation failed": "handler/azfunc logs it only when the function returns an error, i.e. the invocation fails",
	"shard done": "SyncShard fails its invocation exactly when the outcome is failed, so the failing shards' lines are " +
		"the ones that never arrive and sums over \"shard done\" miss them; the timer's \"cycle summary\" adds up every shard's record",
}

// Lines of the timer (SyncTimer, internal/syncer Planner), which answers success even when it
// cannot plan (handler.go), so its lines always reach Application Insights: what alerts may read.
var timerLines = []string{
	"cycle summary",
	"queue health",
	"unusual cycle",
	"cycle not planned: could not list the users",
}

var msgFilterRE = regexp.MustCompile(`msg\)?\s*(?:==|=~)\s*"([^"]+)"`)
var msgInRE = regexp.MustCompile(`msg\)?\s*in~?\s*\(([^)]*)\)`)
var quotedRE = regexp.MustCompile(`"([^"]*)"`)

// kqlCode drops // comments from a query.
func kqlCode(q string) string {
	var out []string
	for _, line := range strings.Split(q, "\n") {
		if i := strings.Index(line, "//"); i >= 0 && strings.Count(line[:i], `"`)%2 == 0 {
			line = line[:i]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// alertQueryProblems checks one alert query: no union (log search alert rules may refuse it), and
// it reads only traces of the timer's lines.
func alertQueryProblems(name, q string) []string {
	code := kqlCode(q)
	var problems []string
	if regexp.MustCompile(`\bunion\b`).MatchString(code) {
		problems = append(problems, name+" uses union, which log search alert rules may refuse: query one table")
	}
	if table, _, _ := strings.Cut(strings.TrimSpace(code), "\n"); strings.TrimSpace(table) != "traces" {
		problems = append(problems, name+" starts from "+strings.TrimSpace(table)+": an alert reads the timer's lines in traces")
	}
	var msgs []string
	for _, m := range msgFilterRE.FindAllStringSubmatch(code, -1) {
		msgs = append(msgs, m[1])
	}
	for _, m := range msgInRE.FindAllStringSubmatch(code, -1) {
		for _, s := range quotedRE.FindAllStringSubmatch(m[1], -1) {
			msgs = append(msgs, s[1])
		}
	}
	for line, why := range failedInvocationLines {
		if strings.Contains(code, `"`+line+`"`) {
			problems = append(problems, name+" reads \""+line+"\" lines: "+why)
		}
	}
	if len(msgs) == 0 {
		problems = append(problems, name+" does not filter on msg: it may match lines that only a failed invocation writes")
	}
	for _, m := range msgs {
		if _, failed := failedInvocationLines[m]; !failed && !slices.Contains(timerLines, m) {
			problems = append(problems, name+" filters on msg \""+m+"\", not a line of the timer (which always answers success)")
		}
	}
	return problems
}

// 4. Alerts rely on lines of successful invocations only, and use no union.
func TestAlertQueriesReadOnlyLinesThatArrive(t *testing.T) {
	for name, q := range alertQueries(t) {
		for _, p := range alertQueryProblems(name, q) {
			t.Error(p)
		}
	}
	// The timer's lines are the handler's own words (internal/syncer writes them).
	var src strings.Builder
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "internal", "syncer", "*.go"))
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			data, _ := os.ReadFile(f)
			src.Write(data)
		}
	}
	for _, l := range timerLines {
		if !strings.Contains(src.String(), `"`+l+`"`) {
			t.Errorf("internal/syncer never writes %q, a line the alert check allows", l)
		}
	}
}

func TestAlertQueryCheckCatchesFailedInvocationLines(t *testing.T) {
	bad := map[string]string{
		"union.kql": "requests\n| where success == false\n| union (traces | where message has \"x\")\n",
		"shard-done.kql": "traces\n| extend d = parse_json(message)\n| where tostring(d.msg) == \"shard done\"\n" +
			"| summarize throttled = sum(toint(d.throttled))\n",
		"no-msg.kql": "traces\n| extend d = parse_json(message)\n| where tostring(d.error_class) == \"mattermost_auth\"\n",
	}
	for name, q := range bad {
		if len(alertQueryProblems(name, q)) == 0 {
			t.Errorf("%s: no problem found", name)
		}
	}
	good := "traces\n| where message has \"cycle summary\" // not \"shard done\"\n| extend d = parse_json(message)\n" +
		"| where tostring(d.msg) in (\"cycle summary\", \"queue health\")\n"
	if p := alertQueryProblems("good.kql", good); len(p) != 0 {
		t.Errorf("good.kql: %v", p)
	}
}

// 5a. No publishing credentials: FTP and SCM basic authentication off (deploys use the identity).
func TestBasicPublishingCredentialsOff(t *testing.T) {
	decls := declarations(bicepCode(t, filepath.Join("modules", "function-app.bicep")))
	off := map[string]bool{}
	for _, d := range ofType(decls, "basicPublishingCredentialsPolicies") {
		name := regexp.MustCompile(`\bname:\s*'([a-z]+)'`).FindStringSubmatch(d.body)
		if name != nil && regexp.MustCompile(`\ballow:\s*false\b`).MatchString(d.body) && d.condition == "" {
			off[name[1]] = true
		}
	}
	for _, policy := range []string{"ftp", "scm"} {
		if !off[policy] {
			t.Errorf("function-app.bicep: no unconditional Microsoft.Web/sites/basicPublishingCredentialsPolicies '%s' with allow: false (basic publishing credentials stay on)", policy)
		}
	}
}

// 5b. Diagnostic settings send Key Vault's audit log and the function app's logs to the workspace.
func TestDiagnosticSettings(t *testing.T) {
	for _, c := range []struct{ file, scope, category string }{
		{"keyvault.bicep", "vault", "AuditEvent"},
		{"function-app.bicep", "site", "FunctionAppLogs"},
	} {
		found := false
		for _, d := range ofType(declarations(bicepCode(t, filepath.Join("modules", c.file))), "Microsoft.Insights/diagnosticSettings") {
			if regexp.MustCompile(`\bscope:\s*`+c.scope+`\b`).MatchString(d.body) &&
				regexp.MustCompile(`\bcategory:\s*'`+c.category+`'`).MatchString(d.body) &&
				regexp.MustCompile(`\bworkspaceId:\s*\S`).MatchString(d.body) && d.condition == "" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no Microsoft.Insights/diagnosticSettings on %s sending %s to the Log Analytics workspace", c.file, c.scope, c.category)
		}
	}
}

// conditionalAccessProblems finds plain member access (x.outputs…, x.properties…) to a conditional
// module or resource x: Bicep warns BCP318 ("may be null at the start of the deployment"). Use
// x.?outputs… or x!.outputs… where the condition guarantees it.
func conditionalAccessProblems(name, src string) []string {
	var problems []string
	code := blankCommentsAndStrings(src)
	for _, d := range declarations(blankComments(src)) {
		if d.condition == "" {
			continue
		}
		re := regexp.MustCompile(`\b` + regexp.QuoteMeta(d.name) + `\.[A-Za-z_]`)
		for _, loc := range re.FindAllStringIndex(code, -1) {
			line := strings.Count(code[:loc[0]], "\n") + 1
			problems = append(problems, name+":"+strconv.Itoa(line)+": "+d.name+" is a conditional "+d.kind+
				" (if "+d.condition+"): access its members with .? (BCP318)")
		}
	}
	return problems
}

// 5c. BCP318: no plain access to a conditional module's outputs or a conditional resource's properties.
func TestNoPlainAccessToConditionalDeclarations(t *testing.T) {
	for _, file := range bicepFiles(t) {
		for _, p := range conditionalAccessProblems(file, readFile(t, file)) {
			t.Error(p)
		}
	}
}

func TestConditionalAccessCheck(t *testing.T) {
	code := (`module app 'app.bicep' = if (create) {
  name: 'app'
}
resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = if (!empty(x)) {
  name: 'kv'
}
// app.outputs.appId in a comment
var a = create ? app.outputs.appId : ''
var b = app.?outputs.appId ?? ''
var c = kv!.properties.vaultUri
var d = kv.properties.vaultUri
var e = 'kv.properties ${kv.?properties.vaultUri}'
`)
	if p := conditionalAccessProblems("x.bicep", code); len(p) != 2 || !strings.Contains(p[0], ":8:") || !strings.Contains(p[1], ":11:") {
		t.Errorf("problems = %q, want lines 8 and 11", p)
	}
}

// 5d. The runtime name and version are in the region's Flex Consumption catalog only if someone
// looked: the README says how (a version missing deploys and then fails at host start).
func TestREADMESaysHowToCheckTheRuntime(t *testing.T) {
	code := bicepCode(t, filepath.Join("modules", "function-app.bicep"))
	name := regexp.MustCompile(`param runtimeName string = '([^']+)'`).FindStringSubmatch(code)
	version := regexp.MustCompile(`param runtimeVersion string = '([^']+)'`).FindStringSubmatch(code)
	if name == nil || version == nil {
		t.Fatal("function-app.bicep: no runtimeName/runtimeVersion parameters with defaults")
	}
	for _, f := range []string{"README.md", filepath.Join("infra", "README.md")} {
		text := readFile(t, f)
		cmd := regexp.MustCompile(`az functionapp list-flexconsumption-runtimes\s+(?:-l|--location)\s+\S+\s+--runtime\s+` + regexp.QuoteMeta(name[1]))
		if !cmd.MatchString(text) {
			t.Errorf("%s does not say to check the runtime with `az functionapp list-flexconsumption-runtimes -l <region> --runtime %s`", f, name[1])
		}
		if !strings.Contains(text, "`"+version[1]+"`") {
			t.Errorf("%s does not name the runtime version `%s` the deployment uses", f, version[1])
		}
	}
}

// 6. Consent without the page: an opt-in parameter (off by default) grants the app's service
// principal the Microsoft Graph app roles it asks for during the deployment — one app role
// assignment per permission, over the same list requiredResourceAccess is built from.
func TestGraphPermissionOptIn(t *testing.T) {
	const graphAppID = "00000003-0000-0000-c000-000000000000"
	const calendarsReadBasicAll = "8ba4a692-bc31-4128-9094-475872af8a53"
	code := bicepCode(t, filepath.Join("modules", "app-registration.bicep"))
	decls := declarations(code)
	param := regexp.MustCompile(`(?m)^param (grant[A-Za-z]*) bool = false\s*$`).FindStringSubmatch(code)
	if param == nil {
		t.Fatal("app-registration.bicep: no `param grant… bool = false` opting in to granting the permission")
	}
	var graphSP, appSP string
	for _, d := range ofType(decls, "Microsoft.Graph/servicePrincipals") {
		switch {
		case d.existing && strings.Contains(d.body, "'"+graphAppID+"'") ||
			d.existing && regexp.MustCompile(`appId:\s*microsoftGraphAppId\b`).MatchString(d.body):
			graphSP = d.name
		case !d.existing && regexp.MustCompile(`appId:\s*app\.appId\b`).MatchString(d.body):
			appSP = d.name
		}
	}
	if graphSP == "" || appSP == "" {
		t.Fatalf("app-registration.bicep: want the Microsoft Graph service principal (existing, appId %s) and the app's own; found %q and %q", graphAppID, graphSP, appSP)
	}
	if !strings.Contains(code, "var calendarsReadBasicAllRoleId = '"+calendarsReadBasicAll+"'") {
		t.Errorf("app-registration.bicep: calendarsReadBasicAllRoleId is not %s (Calendars.ReadBasic.All)", calendarsReadBasicAll)
	}
	grants := ofType(decls, "Microsoft.Graph/appRoleAssignedTo")
	if len(grants) != 1 {
		t.Fatalf("app-registration.bicep: %d Microsoft.Graph/appRoleAssignedTo resources, want 1 (a loop over the permissions)", len(grants))
	}
	g := grants[0]
	if g.condition != param[1] {
		t.Errorf("the app role assignment's condition is %q, want %q (opt-in)", g.condition, param[1])
	}
	loop := regexp.MustCompile(`=\s*\[\s*for\s+(\w+)\s+in\s+(\w+)\s*:`).FindStringSubmatch(code[strings.Index(code, "resource "+g.name):])
	if loop == nil {
		t.Fatal("the app role assignment is not a loop over the permissions")
	}
	access := regexp.MustCompile(`resourceAccess:\s*\[\s*for\s+\w+\s+in\s+(\w+)\s*:`).FindStringSubmatch(code)
	if access == nil || access[1] != loop[2] {
		t.Errorf("requiredResourceAccess and the grants loop over different lists (%v, %q): a permission would be asked for and not granted, or granted unasked", access, loop[2])
	}
	for _, want := range []string{`principalId:\s*` + appSP + `\.id\b`, `resourceId:\s*` + graphSP + `\.id\b`, `appRoleId:\s*` + loop[1] + `\b`} {
		if !regexp.MustCompile(want).MatchString(g.body) {
			t.Errorf("the app role assignment lacks %s", want)
		}
	}
	// main.bicep passes a parameter of its own, which azd fills from an environment variable.
	main := bicepCode(t, "main.bicep")
	mainParam := regexp.MustCompile(`(?m)^param (grant[A-Za-z]*) bool = false\s*$`).FindStringSubmatch(main)
	if mainParam == nil {
		t.Fatal("main.bicep: no `param grant… bool = false`")
	}
	if !regexp.MustCompile(`\b` + param[1] + `:\s*` + mainParam[1] + `\b`).MatchString(main) {
		t.Errorf("main.bicep does not pass %s to the app registration module's %s", mainParam[1], param[1])
	}
	var params struct {
		Parameters map[string]struct {
			Value any `json:"value"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(readFile(t, "infra", "main.parameters.json")), &params); err != nil {
		t.Fatal(err)
	}
	if v, ok := params.Parameters[mainParam[1]].Value.(string); !ok || !regexp.MustCompile(`^\$\{[A-Z_]+=false\}$`).MatchString(v) {
		t.Errorf("main.parameters.json: %s is %v, want \"${ENV_VAR=false}\"", mainParam[1], params.Parameters[mainParam[1]].Value)
	}
}
