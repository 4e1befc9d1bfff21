package pack

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// TestBuildRealRepo builds the package of this repository and checks what Azure will get: host.json,
// one <Name>/function.json per functions/<Name>/function.json (same bytes), the executable named by
// host.json at the root, Unix mode 0755, a static x86-64 ELF; nothing else; and the same bytes twice.
func TestBuildRealRepo(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a", "calstatus.zip"), filepath.Join(dir, "b", "calstatus.zip")
	if err := Build(root, first); err != nil {
		t.Fatal(err)
	}

	// What the package must hold, read from the repository independently of Build.
	hostJSON, err := os.ReadFile(filepath.Join(root, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := ExecutableName(hostJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"host.json": hostJSON}
	fnJSONs, err := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	if err != nil || len(fnJSONs) == 0 {
		t.Fatalf("no functions/*/function.json in the repository (%v)", err)
	}
	for _, p := range fnJSONs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want[filepath.Base(filepath.Dir(p))+"/function.json"] = data
	}

	zr, err := zip.OpenReader(first)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	var exeData []byte
	for _, f := range zr.File {
		names = append(names, f.Name)
		if !f.Modified.Equal(ModTime) {
			t.Errorf("%s: modified %v, want the fixed %v", f.Name, f.Modified, ModTime)
		}
		if creator := f.CreatorVersion >> 8; creator != 3 {
			t.Errorf("%s: creator OS %d, want 3 (Unix), or extractors ignore the mode", f.Name, creator)
		}
		data := readEntry(t, f)
		if f.Name == exe {
			exeData = data
			if f.Mode() != 0o755 {
				t.Errorf("%s: mode %v, want -rwxr-xr-x", f.Name, f.Mode())
			}
			continue
		}
		w, ok := want[f.Name]
		switch {
		case !ok:
			t.Errorf("unexpected entry %q", f.Name)
		case !bytes.Equal(data, w):
			t.Errorf("%s differs from the repository's file", f.Name)
		}
		if f.Mode() != 0o644 {
			t.Errorf("%s: mode %v, want -rw-r--r--", f.Name, f.Mode())
		}
		delete(want, f.Name)
	}
	for name := range want {
		t.Errorf("missing entry %q", name)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries not sorted: %q", names)
	}
	if exeData == nil {
		t.Fatalf("no executable %q at the zip root (entries %q)", exe, names)
	}
	checkELF(t, exeData)

	// Layout reports the same.
	entries, err := Layout(first)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(names) {
		t.Fatalf("Layout: %d entries, zip has %d", len(entries), len(names))
	}
	for i, e := range entries {
		if e.Name != names[i] {
			t.Errorf("Layout entry %d: %q, want %q", i, e.Name, names[i])
		}
		if e.Name == exe && (e.Mode != 0o755 || e.Size != int64(len(exeData))) {
			t.Errorf("Layout: %v", e)
		}
	}

	// Unpacked, the handler is executable.
	app := filepath.Join(dir, "app")
	if err := Extract(first, app); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(app, filepath.FromSlash(exe)))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("extracted %s: mode %v, want -rwxr-xr-x", exe, st.Mode())
	}

	// Reproducible.
	if err := Build(root, second); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if !bytes.Equal(a, b) {
		t.Fatalf("two builds of the same tree differ (%d and %d bytes)", len(a), len(b))
	}
}

func readEntry(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return data
}

// checkELF: a 64-bit little-endian ELF for x86-64 (e_machine 0x3E), statically linked (no
// program interpreter), as CGO_ENABLED=0 GOOS=linux GOARCH=amd64 gives.
func checkELF(t *testing.T, b []byte) {
	t.Helper()
	if len(b) < 64 || !bytes.Equal(b[:4], []byte{0x7f, 'E', 'L', 'F'}) {
		t.Fatalf("executable is not ELF (starts % x)", b[:min(len(b), 4)])
	}
	if b[4] != 2 || b[5] != 1 {
		t.Fatalf("executable: EI_CLASS %d EI_DATA %d, want 2 (64-bit) and 1 (little-endian)", b[4], b[5])
	}
	if m := binary.LittleEndian.Uint16(b[18:20]); m != 0x3e {
		t.Fatalf("executable: e_machine %#x, want 0x3e (x86-64)", m)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("executable is dynamically linked (has PT_INTERP); want a static binary")
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("executable has a symbol table; want -ldflags=-s -w")
	}
}

func TestExecutableName(t *testing.T) {
	for in, want := range map[string]string{
		`{"customHandler":{"description":{"defaultExecutablePath":"calstatus"}}}`:          "calstatus",
		`{"CustomHandler":{"Description":{"DefaultExecutablePath":"./calstatus"}}}`:        "calstatus",
		`{"customHandler":{"description":{"defaultExecutablePath":"bin/handler"}}}`:        "bin/handler",
		"\xef\xbb\xbf" + `{"customHandler":{"description":{"defaultExecutablePath":"h"}}}`: "h",
	} {
		got, err := ExecutableName([]byte(in))
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		`{}`,
		`{"customHandler":{"description":{}}}`,
		`{"customHandler":{"description":{"defaultExecutablePath":""}}}`,
		`{"customHandler":{"description":{"defaultExecutablePath":"/usr/bin/calstatus"}}}`,
		`{"customHandler":{"description":{"defaultExecutablePath":"../calstatus"}}}`,
		`{"customHandler":{"description":{"defaultExecutablePath":"host.json"}}}`,
		`{"customHandler":{"description":{"defaultExecutablePath":"C:\\calstatus.exe"}}}`,
		`not json`,
	} {
		if got, err := ExecutableName([]byte(in)); err == nil {
			t.Errorf("%s: %q, want an error", in, got)
		}
	}
}

func TestFunctions(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("functions/Zeta/function.json", "{}")
	write("functions/Alpha/function.json", "{}")
	write("functions/notes/README.md", "not a function")
	write("functions/.hidden/function.json", "{}")
	write("functions/stray.json", "{}")
	got, err := Functions(root)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "Alpha,Zeta" {
		t.Fatalf("Functions = %q, want [Alpha Zeta]", got)
	}
	write("functions/9lives/function.json", "{}")
	if _, err := Functions(root); err == nil {
		t.Fatal("a function folder named 9lives was accepted (the host refuses names not starting with a letter)")
	}
	if _, err := Functions(t.TempDir()); err == nil {
		t.Fatal("no functions folder: want an error")
	}
}

// TestZipDeterministic builds zips from the same files given in different orders.
func TestZipDeterministic(t *testing.T) {
	dir := t.TempDir()
	files := []file{{"b/function.json", 0o644, []byte("{}")}, {"app", 0o755, []byte("\x7fELF...")}, {"host.json", 0o644, []byte(`{"version":"2.0"}`)}}
	if err := writeZip(filepath.Join(dir, "1.zip"), append([]file(nil), files...)); err != nil {
		t.Fatal(err)
	}
	files[0], files[2] = files[2], files[0]
	if err := writeZip(filepath.Join(dir, "2.zip"), files); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "1.zip"))
	b, _ := os.ReadFile(filepath.Join(dir, "2.zip"))
	if !bytes.Equal(a, b) {
		t.Fatal("same files, different zips")
	}
	entries, err := Layout(filepath.Join(dir, "1.zip"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.String())
	}
	want := []string{"-rwxr-xr-x         7 app", "-rw-r--r--         2 b/function.json", "-rw-r--r--        17 host.json"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Layout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %q", leftovers)
	}
	if err := writeZip(filepath.Join(dir, "3.zip"), []file{{"x", 0o644, nil}, {"x", 0o644, nil}}); err == nil {
		t.Fatal("duplicate entries accepted")
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../evil", "a/../../evil", "/etc/evil", `..\evil`} {
		dir := t.TempDir()
		zipPath := filepath.Join(dir, "bad.zip")
		f, err := os.Create(zipPath)
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		zw.Close()
		f.Close()
		if err := Extract(zipPath, filepath.Join(dir, "out")); err == nil {
			t.Errorf("entry %q extracted", name)
		}
	}
}
