// Package pack builds calstatus's deployment package: the zip that Azure Functions (Flex
// Consumption one-deploy, and azd) takes, holding the app root as the Functions host sees it:
//
//	host.json
//	<Name>/function.json   one folder per function, from functions/<Name>/function.json
//	calstatus              the linux/amd64 handler, mode 0755 (host.json's defaultExecutablePath)
//
// The function folders sit at the zip's root because that is where the host looks for them: it
// indexes the direct subfolders of the app root holding a function.json, and does not descend
// into a functions/ folder (the repository keeps them under functions/ for tidiness; funchost
// accepts both).
//
// The zip is deterministic: entries sorted by name, fixed modification times, no directory
// entries, so two builds of the same tree with the same Go toolchain give the same bytes.
package pack

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Target platform of the handler: Azure Functions on Linux (Flex Consumption) runs x86-64.
const (
	GOOS   = "linux"
	GOARCH = "amd64"
)

// ModTime is every entry's modification time (fixed, for reproducible zips). 2000-01-01 rather
// than the MS-DOS epoch (1980) so no time zone shifts it out of range in tools that show it.
var ModTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Entry is one file in a package.
type Entry struct {
	Name string      // slash-separated path inside the zip
	Mode fs.FileMode // from the zip header (Unix mode when the creator is Unix)
	Size int64       // uncompressed
}

func (e Entry) String() string { return fmt.Sprintf("%v %9d %s", e.Mode, e.Size, e.Name) }

// file is what goes into the zip.
type file struct {
	name string
	mode fs.FileMode
	data []byte
}

// Build compiles the handler in repoRoot for linux/amd64 and writes the deployment zip to outZip
// (its folder is created; the zip is written next to it and renamed, so a failed build never
// leaves a partial package behind).
func Build(repoRoot, outZip string) error {
	hostJSON, err := os.ReadFile(filepath.Join(repoRoot, "host.json"))
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	exe, err := ExecutableName(hostJSON)
	if err != nil {
		return err
	}
	files := []file{{name: "host.json", mode: 0o644, data: hostJSON}}
	fns, err := Functions(repoRoot)
	if err != nil {
		return err
	}
	for _, name := range fns {
		data, err := os.ReadFile(filepath.Join(repoRoot, "functions", name, "function.json"))
		if err != nil {
			return fmt.Errorf("pack: %w", err)
		}
		files = append(files, file{name: name + "/function.json", mode: 0o644, data: data})
	}
	for _, name := range fns {
		if first, _, _ := strings.Cut(exe, "/"); strings.EqualFold(first, name) {
			return fmt.Errorf("pack: the executable %q collides with function folder %q", exe, name)
		}
	}

	tmp, err := os.MkdirTemp("", "calstatus-pack-")
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "handler")
	if err := GoBuild(repoRoot, bin); err != nil {
		return err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	files = append(files, file{name: exe, mode: 0o755, data: data})
	return writeZip(outZip, files)
}

// GoBuild builds the handler (the main package at repoRoot) for linux/amd64, static (no cgo),
// without local paths (-trimpath) or symbol tables (-s -w), into out.
func GoBuild(repoRoot, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOOS="+GOOS, "GOARCH="+GOARCH, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pack: go build for %s/%s: %v\n%s", GOOS, GOARCH, err, b)
	}
	return nil
}

// ExecutableName reads host.json's customHandler.description.defaultExecutablePath (keys are
// case-insensitive, as in the host's configuration) and checks that it names a file inside the
// app root.
func ExecutableName(hostJSON []byte) (string, error) {
	var doc map[string]any
	if err := json.Unmarshal(bytes.TrimPrefix(hostJSON, []byte("\xef\xbb\xbf")), &doc); err != nil {
		return "", fmt.Errorf("pack: host.json: %w", err)
	}
	var cur any = doc
	for _, key := range []string{"customHandler", "description", "defaultExecutablePath"} {
		obj, _ := cur.(map[string]any)
		cur = nil
		for k, v := range obj {
			if strings.EqualFold(k, key) {
				cur = v
				break
			}
		}
	}
	p, _ := cur.(string)
	if p == "" {
		return "", errors.New("pack: host.json has no customHandler.description.defaultExecutablePath")
	}
	clean := path.Clean(strings.ReplaceAll(p, `\`, "/"))
	if path.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(clean, ':') {
		return "", fmt.Errorf("pack: host.json defaultExecutablePath %q is not a file inside the app", p)
	}
	if clean == "host.json" {
		return "", fmt.Errorf("pack: host.json defaultExecutablePath %q names host.json", p)
	}
	return clean, nil
}

// validFunctionName is the host's rule for function names (Utility.IsValidFunctionName).
var validFunctionName = regexp.MustCompile(`(?i)^[a-z][a-z0-9_\-]{0,127}$`)

// Functions lists, sorted, the folders of repoRoot/functions that hold a function.json (other
// folders are ignored, as the host ignores them).
func Functions(repoRoot string) ([]string, error) {
	dir := filepath.Join(repoRoot, "functions")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, e.Name(), "function.json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("pack: %s/function.json is not a regular file", e.Name())
		}
		if !validFunctionName.MatchString(e.Name()) {
			return nil, fmt.Errorf("pack: %q is not a valid function name (letters, digits, _ and -, starting with a letter)", e.Name())
		}
		out = append(out, e.Name())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pack: no <Name>/function.json in %s", dir)
	}
	sort.Strings(out)
	return out, nil
}

// writeZip writes files, sorted by name, with fixed times and Unix modes, to out.
func writeZip(out string, files []file) error {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	for i := 1; i < len(files); i++ {
		if files[i].name == files[i-1].name {
			return fmt.Errorf("pack: %s twice in the package", files[i].name)
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer os.Remove(f.Name()) // no-op once renamed
	zw := zip.NewWriter(f)
	for _, fl := range files {
		h := &zip.FileHeader{Name: fl.name, Method: zip.Deflate, Modified: ModTime}
		h.SetMode(fl.mode) // also marks the creator as Unix, so extractors apply the mode
		w, err := zw.CreateHeader(h)
		if err != nil {
			f.Close()
			return fmt.Errorf("pack: %w", err)
		}
		if _, err := w.Write(fl.data); err != nil {
			f.Close()
			return fmt.Errorf("pack: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("pack: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("pack: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	return nil
}

// Layout lists a zip's entries in their order, with their modes and sizes.
func Layout(zipPath string) ([]Entry, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out := make([]Entry, 0, len(zr.File))
	for _, f := range zr.File {
		out = append(out, Entry{Name: f.Name, Mode: f.Mode(), Size: int64(f.UncompressedSize64)})
	}
	return out, nil
}

// Extract unpacks a zip into dir the way the Functions host's deployment does on Linux: files
// keep their Unix permissions (so the handler stays executable). Entries that would land outside
// dir, and links, are refused.
func Extract(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		name := path.Clean(f.Name)
		if !fs.ValidPath(name) || strings.Contains(f.Name, `\`) {
			return fmt.Errorf("extract: entry %q is outside the target folder", f.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("extract: entry %q is not a regular file (%v)", f.Name, mode)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := extractFile(f, target, mode.Perm()); err != nil {
			return fmt.Errorf("extract %s: %w", f.Name, err)
		}
	}
	return nil
}

func extractFile(f *zip.File, target string, perm fs.FileMode) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(perm); err != nil { // exact mode, whatever the umask
		out.Close()
		return err
	}
	return out.Close()
}
