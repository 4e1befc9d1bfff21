// Command mmpatch applies hunk files to a copy of the Mattermost server source: the local test
// stack (devtools/stack/stack.sh) builds its "v10" and "v10early" server profiles from the
// v6.7.2 source with newer upstream behaviours written in this way.
//
// Usage:
//
//	mmpatch -dir <source root> file.hunks...
//
// A hunk file holds any number of hunks; lines before the first directive are comments:
//
//	@@@ hunk <name>
//	@@@ file <path relative to -dir>
//	@@@ old
//	<exact old text, one or more lines>
//	@@@ new
//	<exact new text, zero or more lines>
//	@@@ end
//
// The old and new texts are the lines between the directives, each with its newline. Each old
// text must occur exactly once in its file at the moment the hunk is applied (hunks apply in
// order, so a later hunk sees the earlier ones' changes); otherwise mmpatch fails, naming the
// hunk, and writes nothing. Files are written only after every hunk applied.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Hunk replaces Old by New in File.
type Hunk struct {
	Name   string // as written after "@@@ hunk"
	Source string // where it was read: file:line of its "@@@ hunk" line
	File   string // slash-separated, relative to the source root
	Old    string
	New    string
}

func (h Hunk) String() string { return fmt.Sprintf("hunk %q (%s)", h.Name, h.Source) }

const directive = "@@@ "

// Parse reads the hunks in r; name is used in messages (the hunk file's path).
func Parse(name string, r io.Reader) ([]Hunk, error) {
	var (
		hunks   []Hunk
		cur     *Hunk
		section string // "", "old", "new"
		text    strings.Builder
		sawOld  bool
		sawNew  bool
	)
	fail := func(n int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(format, args...))
	}
	endSection := func() {
		switch section {
		case "old":
			cur.Old = text.String()
		case "new":
			cur.New = text.String()
		}
		text.Reset()
		section = ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if !strings.HasPrefix(line, directive) {
			if section != "" {
				text.WriteString(line)
				text.WriteByte('\n')
			} else if cur != nil && strings.TrimSpace(line) != "" {
				return nil, fail(n, "text outside \"@@@ old\"/\"@@@ new\" in %s", cur)
			}
			continue
		}
		word, arg, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, directive)), " ")
		arg = strings.TrimSpace(arg)
		switch word {
		case "hunk":
			if cur != nil {
				return nil, fail(n, "%s has no \"@@@ end\"", cur)
			}
			if arg == "" {
				return nil, fail(n, "\"@@@ hunk\" needs a name")
			}
			cur = &Hunk{Name: arg, Source: fmt.Sprintf("%s:%d", name, n)}
			sawOld, sawNew = false, false
		case "file", "old", "new", "end":
			if cur == nil {
				return nil, fail(n, "\"@@@ %s\" outside a hunk", word)
			}
			endSection()
			switch word {
			case "file":
				if arg == "" || filepath.IsAbs(arg) || strings.HasPrefix(filepath.Clean(arg), "..") {
					return nil, fail(n, "%s: \"@@@ file\" needs a relative path inside the source, got %q", cur, arg)
				}
				cur.File = arg
			case "old":
				if sawOld {
					return nil, fail(n, "%s: two \"@@@ old\"", cur)
				}
				sawOld, section = true, "old"
			case "new":
				if !sawOld || sawNew {
					return nil, fail(n, "%s: \"@@@ new\" must follow one \"@@@ old\"", cur)
				}
				sawNew, section = true, "new"
			case "end":
				switch {
				case cur.File == "":
					return nil, fail(n, "%s has no \"@@@ file\"", cur)
				case !sawOld || !sawNew:
					return nil, fail(n, "%s needs \"@@@ old\" and \"@@@ new\"", cur)
				case cur.Old == "":
					return nil, fail(n, "%s has an empty old text", cur)
				}
				hunks = append(hunks, *cur)
				cur = nil
			}
		default:
			return nil, fail(n, "unknown directive %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cur != nil {
		return nil, fail(n, "%s has no \"@@@ end\"", cur)
	}
	return hunks, nil
}

// Apply applies hunks, in order, to the files under dir. It reads every file first and writes
// nothing unless every hunk's old text occurs exactly once when its turn comes.
func Apply(dir string, hunks []Hunk) error {
	files := map[string][]byte{}
	var order []string
	for _, h := range hunks {
		p := filepath.Join(dir, filepath.FromSlash(h.File))
		src, ok := files[p]
		if !ok {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("%s: %w", h, err)
			}
			src, order = b, append(order, p)
		}
		switch c := bytes.Count(src, []byte(h.Old)); c {
		case 1:
		case 0:
			return fmt.Errorf("%s: old text not found in %s (the source is not the one the hunk was written for):\n%s", h, h.File, indent(h.Old))
		default:
			return fmt.Errorf("%s: old text occurs %d times in %s, want exactly once (make it longer):\n%s", h, c, h.File, indent(h.Old))
		}
		files[p] = bytes.Replace(src, []byte(h.Old), []byte(h.New), 1)
	}
	for _, p := range order {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		// Module cache copies are read-only: make the file writable first.
		if err := os.Chmod(p, fi.Mode().Perm()|0o200); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[p], 0); err != nil {
			return err
		}
	}
	return nil
}

func indent(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return "    | " + strings.ReplaceAll(s, "\n", "\n    | ")
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mmpatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "root of the source tree the hunks' paths are relative to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() == 0 {
		return errors.New("usage: mmpatch -dir <source root> file.hunks...")
	}
	var all []Hunk
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		hs, err := Parse(name, f)
		f.Close()
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return fmt.Errorf("%s: no hunks", name)
		}
		all = append(all, hs...)
	}
	if err := Apply(*dir, all); err != nil {
		return err
	}
	for _, h := range all {
		fmt.Fprintf(stdout, "mmpatch: applied %s to %s\n", h, h.File)
	}
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mmpatch: FAILED: %v\n", err)
		os.Exit(1)
	}
}
