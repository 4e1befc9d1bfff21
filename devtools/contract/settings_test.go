// Package contract checks that the settings calstatus reads (internal/config.Settings, the one
// list Load reads from) are the ones the README documents, local.settings.example.json shows and
// the deployment (infra/main.bicep) sets — each way round.
package contract

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"testing"

	"github.com/calstatus/calstatus/devtools/bicepcheck"
	"github.com/calstatus/calstatus/internal/config"
)

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func names(pick func(config.Setting) bool) []string {
	var out []string
	for _, s := range config.Settings {
		if pick(s) {
			out = append(out, s.Name)
		}
	}
	return out
}

// problems lists what is in want and not in got, and the other way round (HostSettings aside).
func problems(where string, want, got []string) []string {
	var out []string
	for _, n := range want {
		if !slices.Contains(got, n) {
			out = append(out, where+" lacks "+n)
		}
	}
	for _, n := range got {
		if !slices.Contains(want, n) && !slices.Contains(config.HostSettings, n) {
			out = append(out, where+" has "+n+", which calstatus does not read (internal/config.Settings)")
		}
	}
	return out
}

func diff(t *testing.T, where string, want, got []string) {
	t.Helper()
	for _, p := range problems(where, want, got) {
		t.Error(p)
	}
}

func TestREADMETableIsTheSettingsList(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z_]+)` \\| ([^|]*) \\| ([^|]*) \\|")
	var got []string
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		got = append(got, m[1])
	}
	want := names(func(config.Setting) bool { return true })
	if !slices.Equal(got, want) {
		diff(t, "README's settings table", want, got)
		t.Errorf("README's settings table, in order, is %v; internal/config.Settings is %v", got, want)
	}
}

func TestLocalSettingsExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root(), "local.settings.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Values map[string]string }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range f.Values {
		got = append(got, k)
	}
	sort.Strings(got)
	diff(t, "local.settings.example.json", names(func(s config.Setting) bool { return s.Local }), got)
}

func TestBicepAppSettings(t *testing.T) {
	got, err := bicepcheck.AppSettings(filepath.Join(root(), "infra", "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatal("no app settings found in infra/main.bicep")
	}
	diff(t, "infra/main.bicep's app settings", names(func(s config.Setting) bool { return s.Azure }), got)
}

// The check fails when one side changes alone, either way.
func TestProblemsCatchBothWays(t *testing.T) {
	want := names(func(s config.Setting) bool { return s.Azure })
	if len(problems("x", want, want)) != 0 {
		t.Fatal("the same list reported")
	}
	if p := problems("x", want, want[1:]); len(p) != 1 {
		t.Fatalf("a setting dropped: %v", p)
	}
	if p := problems("x", want, append(slices.Clone(want), "NEW_SETTING")); len(p) != 1 {
		t.Fatalf("a setting added: %v", p)
	}
	if p := problems("x", want, append(slices.Clone(want), config.HostSettings[0])); len(p) != 0 {
		t.Fatalf("a host setting: %v", p)
	}
}
