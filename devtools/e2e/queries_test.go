package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/calstatus/calstatus/devtools/graphsim"
)

// The monitoring queries (infra/queries/*.kql: the alerts, the workbook, the README's KQL) read
// fields of the JSON lines the handler writes. Kusto cannot run here, so this runs what the queries
// rely on against lines the real handler wrote through the local host: every message a query
// filters on is written, and every field it reads is in those lines.
func TestQueriesReadTheLinesTheHandlerWrites(t *testing.T) {
	// A normal day, a rejected token, and everyone out of office (an unusual cycle).
	allOOF := &graphsim.Scenario{Generator: graphsim.Generator{Seed: 1, OOFDayFraction: 1}}
	lines := handlerLines(t, graphsim.DefaultScenario(), nil)
	lines = append(lines, handlerLines(t, graphsim.DefaultScenario(), map[string]string{"MATTERMOST_TOKEN": "rejected-token"})...)
	lines = append(lines, handlerLines(t, allOOF, nil)...)
	files, err := filepath.Glob(filepath.Join(repoRoot(), "infra", "queries", "*.kql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no queries in infra/queries (%v)", err)
	}
	msgRef := regexp.MustCompile(`msg\)?\s*(?:==|=~|in\s*\()\s*"([^"]+)"`)
	fieldRef := regexp.MustCompile(`\bd\.([a-z_]+)(?:\.([a-z_]+))?`)
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		q := string(data)
		if !strings.Contains(q, "parse_json(message)") {
			continue // reads the host's own tables (requests)
		}
		checked++
		name := filepath.Base(f)
		var msgs []string
		for _, m := range msgRef.FindAllStringSubmatch(q, -1) {
			msgs = append(msgs, m[1])
			if len(linesWith(lines, []string{m[1]})) == 0 {
				t.Errorf("%s filters on msg %q, which the handler never wrote", name, m[1])
			}
		}
		scope := linesWith(lines, msgs)
		for _, m := range fieldRef.FindAllStringSubmatch(q, -1) {
			field, sub := m[1], m[2]
			if field == "msg" || field == "level" {
				continue
			}
			found := false
			for _, l := range scope {
				v, ok := l[field]
				if ok && sub != "" {
					_, ok = v.(map[string]any) // a failure class appears only when it occurs
				}
				found = found || ok
			}
			if !found {
				t.Errorf("%s reads d.%s, which no %v line the handler wrote has", name, strings.TrimSuffix(field+"."+sub, "."), msgs)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no query parses the handler's lines")
	}
	t.Logf("%d queries checked against %d lines", checked, len(lines))
}

func linesWith(lines []map[string]any, msgs []string) []map[string]any {
	if len(msgs) == 0 {
		return lines
	}
	var out []map[string]any
	for _, l := range lines {
		for _, m := range msgs {
			if l["msg"] == m {
				out = append(out, l)
			}
		}
	}
	return out
}

// handlerLines runs two cycles (the second summarises the first) through the local host and
// returns every log line of every invocation, decoded.
func handlerLines(t *testing.T, sc *graphsim.Scenario, settings map[string]string) []map[string]any {
	t.Helper()
	h := newHarness(t, harnessOptions{scenario: sc, settings: settings})
	var raw []string
	for cycle := 0; cycle < 2; cycle++ {
		_, _, logs := h.cycle(2 * time.Minute)
		raw = append(raw, logs...)
	}
	h.host.Close() // the next harness's host must be the only one taking messages from the queue
	var out []map[string]any
	for _, l := range raw {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line is not one JSON object: %q", l)
		}
		out = append(out, m)
	}
	return out
}
