package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const source = `package app

import (
	"errors"
	"net/http"
)

func f() { set(a) }
func g() { set(b) }
func h() { set(b) }
`

// tree writes source as app/status.go under a new directory and returns the directory.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app", "status.go"), []byte(source), 0o444); err != nil {
		t.Fatal(err)
	}
	return dir
}

func hunkFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.hunks")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "app", "status.go"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const good = `# A comment before the first hunk.
@@@ hunk import-time
@@@ file app/status.go
@@@ old
	"net/http"
)
@@@ new
	"net/http"
	"time"
)
@@@ end

@@@ hunk f
@@@ file app/status.go
@@@ old
func f() { set(a) }
@@@ new
func f() { setWithExpiry(a, time.Minute) }
@@@ end
`

func TestApply(t *testing.T) {
	dir := tree(t)
	var out strings.Builder
	if err := run([]string{"-dir", dir, hunkFile(t, good)}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(source, "\t\"net/http\"\n", "\t\"net/http\"\n\t\"time\"\n", 1)
	want = strings.Replace(want, "func f() { set(a) }", "func f() { setWithExpiry(a, time.Minute) }", 1)
	if got := read(t, dir); got != want {
		t.Fatalf("patched file:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(out.String(), `applied hunk "f"`) {
		t.Errorf("output %q does not name the applied hunk", out.String())
	}
}

// TestBrokenHunk: a hunk whose old text is not in the file (or not once) fails, naming the
// hunk, and no file is changed, not even by the hunks before it.
func TestBrokenHunk(t *testing.T) {
	for _, tc := range []struct {
		name, hunk, want string
	}{
		{"not found", "@@@ hunk gone\n@@@ file app/status.go\n@@@ old\nfunc f() { set(c) }\n@@@ new\nx\n@@@ end\n",
			`hunk "gone" (`},
		{"twice", "@@@ hunk ambiguous\n@@@ file app/status.go\n@@@ old\n{ set(b) }\n@@@ new\nx\n@@@ end\n",
			`hunk "ambiguous"`},
		{"whitespace differs", "@@@ hunk spaces\n@@@ file app/status.go\n@@@ old\n    \"net/http\"\n@@@ new\nx\n@@@ end\n",
			`hunk "spaces"`},
		{"missing file", "@@@ hunk nofile\n@@@ file app/nope.go\n@@@ old\nx\n@@@ new\ny\n@@@ end\n",
			`hunk "nofile"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t)
			err := run([]string{"-dir", dir, hunkFile(t, good+tc.hunk)}, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run succeeded with a broken hunk")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if got := read(t, dir); got != source {
				t.Errorf("file changed although a hunk failed:\n%s", got)
			}
		})
	}
	dir := tree(t)
	err := run([]string{"-dir", dir, hunkFile(t, "@@@ hunk gone\n@@@ file app/status.go\n@@@ old\nnope\n@@@ new\n@@@ end\n")}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "| nope") {
		t.Errorf("not-found error %v: want it to say 'not found' and quote the old text", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"no end", "@@@ hunk a\n@@@ file f\n@@@ old\nx\n@@@ new\ny\n", `no "@@@ end"`},
		{"no file", "@@@ hunk a\n@@@ old\nx\n@@@ new\ny\n@@@ end\n", `no "@@@ file"`},
		{"no new", "@@@ hunk a\n@@@ file f\n@@@ old\nx\n@@@ end\n", `needs "@@@ old" and "@@@ new"`},
		{"empty old", "@@@ hunk a\n@@@ file f\n@@@ old\n@@@ new\ny\n@@@ end\n", "empty old text"},
		{"unknown", "@@@ hunk a\n@@@ fiel f\n", "unknown directive"},
		{"stray text", "@@@ hunk a\n@@@ file f\nstray\n", "text outside"},
		{"escaping path", "@@@ hunk a\n@@@ file ../etc/passwd\n", "relative path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.hunks", strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestRepoHunksParse: the hunk files the stack uses parse, and each names a file.
func TestRepoHunksParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "mattermost", "hunks", "*.hunks"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no hunk files under devtools/stack/mattermost/hunks")
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := Parse(p, f)
		f.Close()
		if err != nil {
			t.Error(err)
		} else if len(hs) == 0 {
			t.Errorf("%s: no hunks", p)
		}
	}
}
