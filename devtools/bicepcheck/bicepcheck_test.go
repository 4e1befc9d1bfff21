package bicepcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tree-sitter packages parse.js loads, pinned: tree-sitter-bicep 1.1.0 is the newest on npm
// and asks for tree-sitter ^0.22.1. Both ship prebuilt binaries (nothing is compiled).
const (
	treeSitterVersion      = "0.22.4"
	treeSitterBicepVersion = "1.1.0"
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

// infraBicepFiles lists infra/**/*.bicep.
func infraBicepFiles(t *testing.T) []string {
	t.Helper()
	infra := filepath.Join(repoRoot(t), "infra")
	var files []string
	err := filepath.WalkDir(infra, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".bicep") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", infra, err)
	}
	if !slices.Contains(files, filepath.Join(infra, "main.bicep")) {
		t.Fatalf("no infra/main.bicep (found %d .bicep files under %s)", len(files), infra)
	}
	return files
}

func cacheRoot() (string, error) {
	if dir := os.Getenv("CALSTATUS_CACHE"); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no CALSTATUS_CACHE and no home folder: %w", err)
	}
	return filepath.Join(home, ".cache", "calstatus"), nil
}

var (
	installOnce sync.Once
	nodePath    string // node_modules folder holding tree-sitter and tree-sitter-bicep
	installErr  error
)

// treeSitter returns the node_modules folder with the pinned tree-sitter packages, installing
// them with npm into ${CALSTATUS_CACHE:-~/.cache/calstatus}/bicepcheck-<versions> unless they are
// already there. Without node or npm the test fails: the Bicep is then not checked at all.
func treeSitter(t *testing.T) string {
	t.Helper()
	installOnce.Do(func() { nodePath, installErr = installTreeSitter() })
	if installErr != nil {
		t.Fatalf("tree-sitter-bicep is needed to check the Bicep syntax: %v", installErr)
	}
	return nodePath
}

func installTreeSitter() (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is not installed or not on PATH (install Node.js: it runs the tree-sitter Bicep parser): %w", tool, err)
		}
	}
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, fmt.Sprintf("bicepcheck-tree-sitter-%s-tree-sitter-bicep-%s", treeSitterVersion, treeSitterBicepVersion))
	modules := filepath.Join(dir, "node_modules")
	if installedVersion(modules, "tree-sitter") == treeSitterVersion && installedVersion(modules, "tree-sitter-bicep") == treeSitterBicepVersion {
		return modules, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	// Install into a fresh folder and rename it into place, so that a half-done install is never
	// mistaken for a cached one and concurrent test runs do not trip over each other.
	tmp, err := os.MkdirTemp(root, "bicepcheck-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	manifest := `{"private": true, "description": "tree-sitter-bicep for calstatus devtools/bicepcheck"}` + "\n"
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(manifest), 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error",
		"tree-sitter@"+treeSitterVersion, "tree-sitter-bicep@"+treeSitterBicepVersion)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install tree-sitter@%s tree-sitter-bicep@%s in %s: %v\n%s", treeSitterVersion, treeSitterBicepVersion, tmp, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run may have installed it meanwhile.
		if installedVersion(modules, "tree-sitter-bicep") != treeSitterBicepVersion {
			return "", fmt.Errorf("moving the npm install to %s: %w", dir, err)
		}
	}
	return modules, nil
}

func installedVersion(modules, pkg string) string {
	data, err := os.ReadFile(filepath.Join(modules, pkg, "package.json"))
	if err != nil {
		return ""
	}
	var manifest struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(data, &manifest) != nil {
		return ""
	}
	return manifest.Version
}

type problem struct {
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Kind   string `json:"kind"`
	Text   string `json:"text"`
}

// parseBicep runs parse.js on files and returns each file's syntax problems.
func parseBicep(t *testing.T, files ...string) map[string][]problem {
	t.Helper()
	modules := treeSitter(t)
	script, err := filepath.Abs("parse.js")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, files...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node parse.js: %v\n%s", err, stderr.String())
	}
	var result struct {
		Files []struct {
			File     string    `json:"file"`
			Problems []problem `json:"problems"`
		} `json:"files"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
		t.Fatalf("node parse.js printed %q: %v", stdout.String(), err)
	}
	if len(result.Files) != len(files) {
		t.Fatalf("node parse.js reported %d files, asked for %d", len(result.Files), len(files))
	}
	byFile := map[string][]problem{}
	for _, f := range result.Files {
		byFile[f.File] = f.Problems
	}
	return byFile
}

func rel(t *testing.T, path string) string {
	if r, err := filepath.Rel(repoRoot(t), path); err == nil {
		return r
	}
	return path
}

func TestInfraBicepSyntax(t *testing.T) {
	files := infraBicepFiles(t)
	problems := parseBicep(t, files...)
	for _, file := range files {
		for _, p := range problems[file] {
			t.Errorf("%s:%d:%d: syntax error (%s %s)", rel(t, file), p.Line, p.Column, p.Kind, p.Text)
		}
	}
	t.Logf("%d Bicep files parsed with tree-sitter-bicep %s", len(files), treeSitterBicepVersion)
}

// The syntax check must catch broken Bicep, and name where.
func TestSyntaxCheckReportsBrokenBicep(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	missingValue := write("missing-value.bicep", `param name string = 'calstatus'

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  properties: {
    httpsOnly:
  }
}
`)
	unclosedArray := write("unclosed-array.bicep", `var settings = {
  names: [
    'A'

}
output n int = 1
`)
	badExtension := write("bad-extension.bicep", "extension microsoftGraphV1\nextension\nparam p string\n")
	good := write("good.bicep", `extension microsoftGraphV1

@secure()
param token string

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'calstatus-test'
  displayName: 'calstatus (test)'
}

var query = loadTextContent('q.kql')
output appId string = app.appId
output url string = 'https://${app.uniqueName}/${length(token)}'
`)

	problems := parseBicep(t, missingValue, unclosedArray, badExtension, good)
	expect := func(file string, line int) {
		t.Helper()
		for _, p := range problems[file] {
			if p.Line == line {
				return
			}
		}
		t.Errorf("%s: expected a syntax error on line %d, got %+v", filepath.Base(file), line, problems[file])
	}
	expect(missingValue, 6)
	expect(unclosedArray, 3)
	expect(badExtension, 2)
	if len(problems[badExtension]) != 1 {
		t.Errorf("bad-extension.bicep: only line 2 is wrong, got %+v", problems[badExtension])
	}
	if len(problems[good]) != 0 {
		t.Errorf("good.bicep: unexpected syntax errors %+v", problems[good])
	}
}

func TestLoadedFilesExist(t *testing.T) {
	root := repoRoot(t)
	loaded := map[string]bool{}
	for _, file := range infraBicepFiles(t) {
		loads, err := FileLoads(file)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, l := range loads {
			if _, err := os.Stat(l.Path); err != nil {
				t.Errorf("%s:%d: %s('%s'): %v", rel(t, l.Bicep), l.Line, l.Function, l.Arg, err)
			}
			loaded[filepath.Clean(l.Path)] = true
		}
	}
	// Every query file is used by the Bicep (alerts or workbook): the README and the Bicep
	// share one text.
	queries, err := filepath.Glob(filepath.Join(root, "infra", "queries", "*.kql"))
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) == 0 {
		t.Error("no infra/queries/*.kql")
	}
	for _, q := range queries {
		if !loaded[filepath.Clean(q)] {
			t.Errorf("%s is loaded by no Bicep file", rel(t, q))
		}
	}
}

// Queries are self-contained: each starts from the traces or requests table.
func TestQueriesStartFromATable(t *testing.T) {
	queries, err := filepath.Glob(filepath.Join(repoRoot(t), "infra", "queries", "*.kql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		data, err := os.ReadFile(q)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if first = strings.TrimSpace(first); first != "traces" && first != "requests" {
			t.Errorf("%s starts with %q, want traces or requests", rel(t, q), first)
		}
	}
}

func TestAppSettingsAreTheContract(t *testing.T) {
	main := filepath.Join(repoRoot(t), "infra", "main.bicep")
	names, err := AppSettings(main)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("app setting %s is set twice", n)
		}
		seen[n] = true
		if !slices.Contains(AppSettingNames, n) {
			t.Errorf("app setting %s is not in AppSettingNames", n)
		}
	}
	for _, n := range AppSettingNames {
		if !seen[n] {
			t.Errorf("app setting %s of AppSettingNames is not set by the Bicep", n)
		}
	}
}

func TestAppSettingsParser(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.bicep", `targetScope = 'subscription'
module registry 'br/public:avm/res/web/site:0.1.0' = {
  name: 'ignored'
}
module app 'modules/app.bicep' = {
  name: 'app'
  params: {
    text: loadTextContent('queries/q.kql')
  }
}
`)
	write("modules/app.bicep", `param useCert bool
param uri string
/* name: 'NOT_A_SETTING' in a comment */
var certSetting = {
  name: 'CERT'
  value: '@Microsoft.KeyVault(SecretUri=${uri})'
}
var miSetting = {
  name: 'MI'
  value: 'x'
}
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan'
}
resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'app'
  properties: {
    siteConfig: {
      appSettings: [
        {
          name: 'FIRST' // a comment
          value: 'name: \'NOT_A_SETTING\' ${concat('}', '{')}'
        }
        useCert ? certSetting : miSetting
        {
          name: 'LAST'
          value: plan.name
        }
      ]
    }
  }
  resource config 'config' = {
    name: 'web'
  }
}
`)
	names, err := AppSettings(filepath.Join(dir, "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"FIRST", "CERT", "MI", "LAST"}; !slices.Equal(names, want) {
		t.Errorf("AppSettings = %q, want %q", names, want)
	}

	loads, err := FileLoads(filepath.Join(dir, "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	if len(loads) != 1 || loads[0].Arg != "queries/q.kql" || loads[0].Line != 8 || loads[0].Path != filepath.Join(dir, "queries", "q.kql") {
		t.Errorf("FileLoads = %+v", loads)
	}

	write("computed.bicep", `param n string
resource site 'Microsoft.Web/sites@2024-04-01' = {
  properties: {
    siteConfig: {
      appSettings: [
        {
          name: n
        }
      ]
    }
  }
}
`)
	if _, err := AppSettings(filepath.Join(dir, "computed.bicep")); err == nil || !strings.Contains(err.Error(), "string literal") {
		t.Errorf("a computed setting name: err = %v, want one about a string literal", err)
	}
	write("nosite.bicep", "param p string\n")
	if _, err := AppSettings(filepath.Join(dir, "nosite.bicep")); err == nil {
		t.Error("a file without a function app: no error")
	}
	if _, err := AppSettings(filepath.Join(dir, "missing.bicep")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: err = %v", err)
	}
}

// bicepconfig.json enables the Microsoft Graph extension under the alias the Bicep uses, and
// every file declaring Microsoft.Graph resources declares that extension.
func TestGraphExtension(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "infra", "bicepconfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		Extensions map[string]string `json:"extensions"`
	}
	if err := json.Unmarshal(StripJSONComments(data), &config); err != nil {
		t.Fatalf("infra/bicepconfig.json: %v", err)
	}
	const registry = "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"
	if ref := config.Extensions["microsoftGraphV1"]; !strings.HasPrefix(ref, registry) {
		t.Errorf("bicepconfig.json extensions.microsoftGraphV1 = %q, want %s<version>", ref, registry)
	}
	graphFiles := 0
	for _, file := range infraBicepFiles(t) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), "'Microsoft.Graph/") {
			continue
		}
		graphFiles++
		if !strings.Contains(string(src), "\nextension microsoftGraphV1\n") && !strings.HasPrefix(string(src), "extension microsoftGraphV1\n") {
			t.Errorf("%s declares Microsoft.Graph resources without `extension microsoftGraphV1`", rel(t, file))
		}
	}
	if graphFiles == 0 {
		t.Error("no Bicep file declares the Microsoft Graph app registration")
	}
}
