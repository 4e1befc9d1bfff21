// Command pack builds calstatus's deployment zip (`make package`):
//
//	go run ./devtools/pack/cmd/pack -o dist/calstatus.zip
//
// It builds the linux/amd64 handler and writes host.json, the function folders and the executable
// (mode 0755) at the zip's root, then prints the zip's path, size and entries.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/calstatus/calstatus/devtools/pack"
	"github.com/calstatus/calstatus/devtools/teststack"
)

func main() {
	out := flag.String("o", "dist/calstatus.zip", "zip to write")
	root := flag.String("C", "", "repository root (default: the nearest folder above the working directory holding go.mod)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "pack: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := run(*root, *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(root, out string) error {
	if root == "" {
		var err error
		if root, err = teststack.RepoRoot(); err != nil {
			return err
		}
	}
	if err := pack.Build(root, out); err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	entries, err := pack.Layout(out)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes (%s), %d entries\n", out, st.Size(), human(st.Size()), len(entries))
	for _, e := range entries {
		fmt.Printf("  %s\n", e)
	}
	return nil
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
