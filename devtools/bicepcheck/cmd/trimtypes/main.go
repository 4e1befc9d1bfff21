// Command trimtypes writes devtools/bicepcheck/testdata/types: the Bicep resource type definitions
// of exactly the resource types and API versions infra/ declares, taken from git checkouts (or
// bare clones) of Azure/bicep-types-az and microsoftgraph/msgraph-bicep-types.
//
//	go run ./devtools/bicepcheck/cmd/trimtypes -az PATH -graph PATH [-az-commit REV] [-graph-commit REV]
//
// For each resource type used, it finds the generated types.json holding it (bicep-types-az:
// generated/<provider>/<namespace>/<version>/types.json; msgraph-bicep-types: the extension version
// infra/bicepconfig.json names, generated/microsoftgraph/microsoft.graph/<api>/<version>/types.json)
// and writes a trimmed copy under testdata/types/<repo>/<path below generated/>: the same JSON
// array of {"$type": …} entries the generator emits, with every entry of the original that is not
// reachable from a kept ResourceType (or a kept ResourceFunctionType of the same type and version)
// left out, the others in their original order and their "#/N" references renumbered. Entries are
// otherwise unchanged (descriptions included). It also writes manifest.json (what came from where,
// at which commit, with the source file's blob id) and README.md (sources, commits, licence).
// Run it again after changing a resource type or API version in infra/.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/calstatus/calstatus/devtools/bicepcheck"
)

const (
	azRepo    = "Azure/bicep-types-az"
	graphRepo = "microsoftgraph/msgraph-bicep-types"
)

func main() {
	azDir := flag.String("az", "", "git checkout or bare clone of "+azRepo)
	azRev := flag.String("az-commit", "HEAD", "commit of "+azRepo+" to read")
	graphDir := flag.String("graph", "", "git checkout or bare clone of "+graphRepo)
	graphRev := flag.String("graph-commit", "HEAD", "commit of "+graphRepo+" to read")
	root := flag.String("root", "", "the calstatus repository (default: the one holding the working directory)")
	flag.Parse()
	if *azDir == "" || *graphDir == "" {
		fmt.Fprintln(os.Stderr, "usage: trimtypes -az PATH -graph PATH [-az-commit REV] [-graph-commit REV]")
		os.Exit(2)
	}
	if err := run(*root, source{azRepo, *azDir, *azRev}, source{graphRepo, *graphDir, *graphRev}); err != nil {
		fmt.Fprintln(os.Stderr, "trimtypes:", err)
		os.Exit(1)
	}
}

type source struct {
	repo, dir, rev string
}

// git runs git on a checkout or a bare clone.
func (s source) git(args ...string) ([]byte, error) {
	gitDir := s.dir
	if st, err := os.Stat(filepath.Join(s.dir, ".git")); err == nil && st.IsDir() {
		gitDir = filepath.Join(s.dir, ".git")
	}
	cmd := exec.Command("git", append([]string{"--git-dir=" + gitDir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func findRoot(root string) (string, error) {
	if root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory (use -root)")
		}
		dir = parent
	}
}

// wanted is a source file and the resource types to keep from it.
type wanted struct {
	src       source
	commit    string
	path      string
	resources map[string]bool // lower-case type@version
}

func run(rootFlag string, az, graph source) error {
	root, err := findRoot(rootFlag)
	if err != nil {
		return err
	}
	infra := filepath.Join(root, "infra")
	files, err := bicepcheck.ParseDir(infra)
	if err != nil {
		return err
	}
	used := bicepcheck.UsedResourceTypes(files)
	graphAPI, graphVersion, err := bicepcheck.GraphTypesVersion(filepath.Join(infra, "bicepconfig.json"))
	if err != nil {
		return err
	}
	azCommit, err := resolve(az)
	if err != nil {
		return err
	}
	graphCommit, err := resolve(graph)
	if err != nil {
		return err
	}
	byPath := map[string]*wanted{}
	var order []string
	add := func(src source, commit, p, typ string) {
		key := src.repo + ":" + p
		w := byPath[key]
		if w == nil {
			w = &wanted{src: src, commit: commit, path: p, resources: map[string]bool{}}
			byPath[key] = w
			order = append(order, key)
		}
		w.resources[strings.ToLower(typ)] = true
	}
	for _, typ := range used {
		if strings.HasPrefix(strings.ToLower(typ), "microsoft.graph/") {
			if graphVersion == "" {
				return fmt.Errorf("%s is used but infra/bicepconfig.json names no Microsoft Graph extension", typ)
			}
			add(graph, graphCommit, fmt.Sprintf("generated/microsoftgraph/microsoft.graph/%s/%s/types.json", graphAPI, graphVersion), typ)
			continue
		}
		out, err := az.git("grep", "-l", "-i", "-F", strconv.Quote(typ), azCommit, "--", "generated/*types.json")
		if err != nil && len(out) == 0 {
			return fmt.Errorf("%s: no types.json of %s@%s defines it (is the type or API version right?)", typ, az.repo, azCommit[:12])
		}
		var paths []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			_, p, _ := strings.Cut(line, ":")
			paths = append(paths, p)
		}
		if len(paths) != 1 {
			return fmt.Errorf("%s: defined in %d files of %s: %v", typ, len(paths), az.repo, paths)
		}
		add(az, azCommit, paths[0], typ)
	}
	sort.Strings(order)

	outDir := filepath.Join(root, "devtools", "bicepcheck", "testdata", "types")
	for _, d := range []string{"bicep-types-az", "msgraph-bicep-types"} {
		if err := os.RemoveAll(filepath.Join(outDir, d)); err != nil {
			return err
		}
	}
	manifest := bicepcheck.Manifest{
		Comment: "Written by go run ./devtools/bicepcheck/cmd/trimtypes; see README.md. Do not edit.",
	}
	licenses := map[string]string{}
	for _, s := range []struct {
		src    source
		commit string
	}{{az, azCommit}, {graph, graphCommit}} {
		text, err := s.src.git("show", s.commit+":LICENSE")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(strings.TrimSpace(string(text)), "MIT License") {
			return fmt.Errorf("%s@%s: LICENSE is not the MIT licence", s.src.repo, s.commit)
		}
		licenses[s.src.repo] = string(text)
		manifest.Sources = append(manifest.Sources, bicepcheck.ManifestSource{Repo: s.src.repo, Commit: s.commit, License: "MIT"})
	}
	for _, key := range order {
		w := byPath[key]
		data, err := w.src.git("show", w.commit+":"+w.path)
		if err != nil {
			return err
		}
		blob, err := w.src.git("rev-parse", w.commit+":"+w.path)
		if err != nil {
			return err
		}
		trimmed, kept, err := trim(data, w.resources)
		if err != nil {
			return fmt.Errorf("%s %s: %v", w.src.repo, w.path, err)
		}
		for k := range w.resources {
			found := false
			for _, name := range kept {
				found = found || strings.ToLower(name) == k
			}
			if !found {
				return fmt.Errorf("%s %s: no ResourceType named %s", w.src.repo, w.path, k)
			}
		}
		rel := path.Join(path.Base(w.src.repo), strings.TrimPrefix(w.path, "generated/"))
		dest := filepath.Join(outDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dest, trimmed, 0o644); err != nil {
			return err
		}
		sort.Strings(kept)
		manifest.Files = append(manifest.Files, bicepcheck.ManifestFile{
			File: rel, Repo: w.src.repo, Path: w.path, Blob: strings.TrimSpace(string(blob)), Resources: kept,
		})
		fmt.Printf("%s: %s\n", rel, strings.Join(kept, ", "))
	}
	mdata, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "manifest.json"), append(mdata, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "README.md"), []byte(readme(manifest, licenses)), 0o644); err != nil {
		return err
	}
	// The result must load.
	if _, err := bicepcheck.LoadTypeDefs(outDir); err != nil {
		return fmt.Errorf("the written definitions do not load: %v", err)
	}
	return nil
}

func resolve(s source) (string, error) {
	out, err := s.git("rev-parse", "--verify", s.rev+"^{commit}")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

var refPattern = regexp.MustCompile(`"\$ref":\s*"#/(\d+)"`)

type entryHead struct {
	Kind         string `json:"$type"`
	Name         string `json:"name"`
	ResourceType string `json:"resourceType"`
	APIVersion   string `json:"apiVersion"`
}

// trim keeps the ResourceType entries named in keep (lower-case type@version), the
// ResourceFunctionType entries of those types, and every entry they reach.
func trim(data []byte, keep map[string]bool) ([]byte, []string, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, nil, err
	}
	var roots []int
	var kept []string
	for i, e := range entries {
		var h entryHead
		if err := json.Unmarshal(e, &h); err != nil {
			return nil, nil, fmt.Errorf("#/%d: %v", i, err)
		}
		switch {
		case h.Kind == "ResourceType" && keep[strings.ToLower(h.Name)]:
			roots = append(roots, i)
			kept = append(kept, h.Name)
		case h.Kind == "ResourceFunctionType" && keep[strings.ToLower(h.ResourceType+"@"+h.APIVersion)]:
			roots = append(roots, i)
		}
		// Every reference must be one the pattern sees.
		if n, m := countRefs(e), len(refPattern.FindAll(e, -1)); n != m {
			return nil, nil, fmt.Errorf("#/%d: %d references, %d in the expected form", i, n, m)
		}
	}
	reached := map[int]bool{}
	for stack := roots; len(stack) > 0; {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if reached[i] {
			continue
		}
		reached[i] = true
		for _, m := range refPattern.FindAllSubmatch(entries[i], -1) {
			j, _ := strconv.Atoi(string(m[1]))
			if j < 0 || j >= len(entries) {
				return nil, nil, fmt.Errorf("#/%d refers to #/%d, out of range", i, j)
			}
			stack = append(stack, j)
		}
	}
	renumber := map[int]int{}
	var out []json.RawMessage
	for i, e := range entries {
		if reached[i] {
			renumber[i] = len(out)
			out = append(out, e)
		}
	}
	for k, e := range out {
		out[k] = refPattern.ReplaceAllFunc(e, func(m []byte) []byte {
			j, _ := strconv.Atoi(string(refPattern.FindSubmatch(m)[1]))
			return []byte(fmt.Sprintf(`"$ref": "#/%d"`, renumber[j]))
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), kept, nil
}

// countRefs counts the "$ref" keys of a JSON value.
func countRefs(data []byte) int {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return -1
	}
	var count func(any) int
	count = func(v any) int {
		n := 0
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				if k == "$ref" {
					n++
				}
				n += count(y)
			}
		case []any:
			for _, y := range x {
				n += count(y)
			}
		}
		return n
	}
	return count(v)
}

func readme(m bicepcheck.Manifest, licenses map[string]string) string {
	var b strings.Builder
	b.WriteString("# Bicep resource type definitions (test data)\n\n")
	b.WriteString("Written by `go run ./devtools/bicepcheck/cmd/trimtypes -az <bicep-types-az checkout> -graph <msgraph-bicep-types checkout>`; do not edit by hand.\n")
	b.WriteString("They are the type definitions the Bicep compiler itself uses for the resource types and API versions that `infra/` declares,\n")
	b.WriteString("and `devtools/bicepcheck` checks every resource body in `infra/` against them (`go test ./devtools/bicepcheck/`).\n\n")
	b.WriteString("Each `types.json` is a trimmed copy of the generated file named in `manifest.json`: the same JSON array of\n")
	b.WriteString("`{\"$type\": …}` entries, keeping only the `ResourceType` entries `infra/` uses, the `ResourceFunctionType` entries\n")
	b.WriteString("(list*() functions) of those types, and every entry they reach; kept entries are unchanged except that their\n")
	b.WriteString("`\"#/N\"` references are renumbered. `manifest.json` gives each file's source path and git blob id.\n\n")
	b.WriteString("After adding a resource type or changing an API version in `infra/`, run the command again (it reads the\n")
	b.WriteString("types `infra/` uses and the Microsoft Graph extension version in `infra/bicepconfig.json`); a test fails until then.\n\n")
	b.WriteString("## Sources\n\n")
	b.WriteString("| Repository | Commit | Licence |\n| --- | --- | --- |\n")
	for _, s := range m.Sources {
		fmt.Fprintf(&b, "| [%s](https://github.com/%s) | [`%s`](https://github.com/%s/tree/%s) | MIT (below) |\n", s.Repo, s.Repo, s.Commit, s.Repo, s.Commit)
	}
	b.WriteString("\n| File | Source | Resource types |\n| --- | --- | --- |\n")
	for _, f := range m.Files {
		fmt.Fprintf(&b, "| `%s` | %s `%s` | %s |\n", f.File, f.Repo, f.Path, strings.Join(f.Resources, ", "))
	}
	for _, s := range m.Sources {
		fmt.Fprintf(&b, "\n## Licence of %s\n\n```\n%s\n```\n", s.Repo, strings.TrimRight(dedent(licenses[s.Repo]), "\n"))
	}
	return b.String()
}

// dedent removes the indentation every non-empty line shares (the LICENSE files are indented).
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	prefix := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if prefix < 0 || n < prefix {
			prefix = n
		}
	}
	for i, l := range lines {
		if len(l) >= prefix && prefix > 0 {
			lines[i] = l[prefix:]
		}
	}
	return strings.Join(lines, "\n")
}
