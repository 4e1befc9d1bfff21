package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/calstatus/calstatus/internal/shard"
	"github.com/calstatus/calstatus/internal/store"
)

// functionsDir is the repository's functions/ folder, seen from this package's directory.
const functionsDir = "../functions"

// binding is what the handler relies on in one binding of a function.json.
type binding struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Direction string `json:"direction"`
	QueueName string `json:"queueName"`
}

// wantFunctions is the contract between the Go constants and functions/*/function.json: every
// function, and every binding of it, by name.
var wantFunctions = map[string][]binding{
	SyncTimerFunction: {
		{Name: TimerBinding, Type: "timerTrigger", Direction: "in"},
		{Name: ShardsOutBinding, Type: "queue", Direction: "out", QueueName: ShardQueue},
	},
	SyncShardFunction: {
		{Name: ShardTriggerBinding, Type: "queueTrigger", Direction: "in", QueueName: ShardQueue},
	},
	AdminConsentFunction:         httpBindings,
	AdminConsentCallbackFunction: httpBindings,
	StatusFunction:               httpBindings,
	SlashCommandFunction:         httpBindings,
}

var httpBindings = []binding{
	{Name: HTTPTriggerBinding, Type: "httpTrigger", Direction: "in"},
	{Name: HTTPOutBinding, Type: "http", Direction: "out"},
}

// readFunctions reads dir/*/function.json: function name (folder) → bindings.
func readFunctions(dir string) (map[string][]binding, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fns := map[string][]binding{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "function.json"))
		if err != nil {
			return nil, fmt.Errorf("function folder %s: %w", e.Name(), err)
		}
		var fj struct {
			Bindings []binding `json:"bindings"`
		}
		if err := json.Unmarshal(raw, &fj); err != nil {
			return nil, fmt.Errorf("%s/function.json: %w", e.Name(), err)
		}
		fns[e.Name()] = fj.Bindings
	}
	return fns, nil
}

// postRoutes lists the POST routes of the handler: one per function.
func postRoutes(t *testing.T, h http.Handler) []string {
	t.Helper()
	r, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("New returned %T, not a chi router", h)
	}
	var routes []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodPost {
			routes = append(routes, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return routes
}

// mismatches compares the function folders (fns), the handler's POST routes and wantFunctions, and
// describes every difference.
func mismatches(fns map[string][]binding, routes []string) []string {
	var out []string
	for name := range fns {
		if !slices.Contains(routes, "/"+name) {
			out = append(out, fmt.Sprintf("functions/%s has no route /%s in the handler", name, name))
		}
		if _, ok := wantFunctions[name]; !ok {
			out = append(out, fmt.Sprintf("functions/%s is not declared in the handler's constants", name))
		}
	}
	for _, route := range routes {
		if _, ok := fns[strings.TrimPrefix(route, "/")]; !ok {
			out = append(out, fmt.Sprintf("the handler routes %s but there is no functions%s/function.json", route, route))
		}
	}
	for name, want := range wantFunctions {
		got, ok := fns[name]
		if !ok {
			out = append(out, fmt.Sprintf("the handler declares function %s but there is no functions/%s/function.json", name, name))
			continue
		}
		byName := map[string]binding{}
		triggers := 0
		for _, b := range got {
			if _, dup := byName[b.Name]; dup {
				out = append(out, fmt.Sprintf("functions/%s: binding %q appears twice", name, b.Name))
			}
			byName[b.Name] = b
			if strings.HasSuffix(b.Type, "Trigger") {
				triggers++
				if b.Direction != "in" {
					out = append(out, fmt.Sprintf("functions/%s: trigger %q has direction %q, want \"in\"", name, b.Name, b.Direction))
				}
			}
		}
		if triggers != 1 {
			out = append(out, fmt.Sprintf("functions/%s has %d triggers, want 1", name, triggers))
		}
		for _, w := range want {
			b, ok := byName[w.Name]
			if !ok {
				out = append(out, fmt.Sprintf("functions/%s has no binding %q (%s, %s)", name, w.Name, w.Type, w.Direction))
				continue
			}
			if b != w {
				out = append(out, fmt.Sprintf("functions/%s binding %q is %+v, want %+v", name, w.Name, b, w))
			}
			delete(byName, w.Name)
		}
		for extra := range byName {
			out = append(out, fmt.Sprintf("functions/%s has binding %q that the handler does not know", name, extra))
		}
	}
	sort.Strings(out)
	return out
}

// TestFunctionsMatchHandler: every function folder has a route and vice versa, and binding names,
// types, directions and queue names are the handler's constants.
func TestFunctionsMatchHandler(t *testing.T) {
	fns, err := readFunctions(functionsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		t.Fatalf("no function folders in %s", functionsDir)
	}
	routes := postRoutes(t, New(Deps{}))
	for _, m := range mismatches(fns, routes) {
		t.Error(m)
	}
	if SyncTimerRoute != "/"+SyncTimerFunction || SyncShardRoute != "/"+SyncShardFunction {
		t.Errorf("routes %s, %s are not / + the function names", SyncTimerRoute, SyncShardRoute)
	}
}

// TestMismatchesCatchOneSidedRenames: the check above fails when only one side changes.
func TestMismatchesCatchOneSidedRenames(t *testing.T) {
	fns, err := readFunctions(functionsDir)
	if err != nil {
		t.Fatal(err)
	}
	routes := postRoutes(t, New(Deps{}))
	if m := mismatches(fns, routes); len(m) != 0 {
		t.Fatalf("the real files do not match: %q", m)
	}
	clone := func() map[string][]binding {
		c := map[string][]binding{}
		for k, v := range fns {
			c[k] = slices.Clone(v)
		}
		return c
	}
	edit := func(fn, name string, f func(*binding)) func(map[string][]binding) {
		return func(m map[string][]binding) {
			for i := range m[fn] {
				if m[fn][i].Name == name {
					f(&m[fn][i])
				}
			}
		}
	}
	cases := map[string]struct {
		files  func(map[string][]binding)
		routes []string
	}{
		"function folder renamed": {files: func(m map[string][]binding) {
			m["SyncShards"] = m[SyncShardFunction]
			delete(m, SyncShardFunction)
		}},
		"extra function folder": {files: func(m map[string][]binding) { m["Other"] = m[SyncShardFunction] }},
		"route renamed":         {routes: []string{SyncTimerRoute, "/SyncShards"}},
		"extra route":           {routes: append(slices.Clone(routes), "/Other")},
		"trigger binding":       {files: edit(SyncShardFunction, ShardTriggerBinding, func(b *binding) { b.Name = "msg" })},
		"output binding":        {files: edit(SyncTimerFunction, ShardsOutBinding, func(b *binding) { b.Name = "out" })},
		"timer binding":         {files: edit(SyncTimerFunction, TimerBinding, func(b *binding) { b.Name = "myTimer" })},
		"trigger queue":         {files: edit(SyncShardFunction, ShardTriggerBinding, func(b *binding) { b.QueueName = "shards" })},
		"output queue":          {files: edit(SyncTimerFunction, ShardsOutBinding, func(b *binding) { b.QueueName = "shards" })},
		"trigger type":          {files: edit(SyncShardFunction, ShardTriggerBinding, func(b *binding) { b.Type = "queue" })},
		"output type":           {files: edit(SyncTimerFunction, ShardsOutBinding, func(b *binding) { b.Type = "blob" })},
		"trigger direction":     {files: edit(SyncTimerFunction, TimerBinding, func(b *binding) { b.Direction = "out" })},
		"output direction":      {files: edit(SyncTimerFunction, ShardsOutBinding, func(b *binding) { b.Direction = "in" })},
		"extra binding": {files: func(m map[string][]binding) {
			m[SyncShardFunction] = append(m[SyncShardFunction], binding{Name: "x", Type: "queue", Direction: "out"})
		}},
		"binding removed": {files: func(m map[string][]binding) { m[SyncTimerFunction] = m[SyncTimerFunction][:1] }},
		"second trigger": {files: func(m map[string][]binding) {
			m[SyncShardFunction] = append(m[SyncShardFunction], wantFunctions[SyncTimerFunction][0])
		}},
		"function.json emptied":  {files: func(m map[string][]binding) { m[SyncShardFunction] = nil }},
		"route and folder moved": {files: func(m map[string][]binding) { m["X"] = m[SyncTimerFunction]; delete(m, SyncTimerFunction) }, routes: []string{"/X", SyncShardRoute}},
	}
	for name, c := range cases {
		m, r := clone(), routes
		if c.files != nil {
			c.files(m)
		}
		if c.routes != nil {
			r = c.routes
		}
		if len(mismatches(m, r)) == 0 {
			t.Errorf("%s: not detected", name)
		}
	}
}

type fakePlanner struct{ msgs []shard.Message }

func (p fakePlanner) Plan(context.Context, *slog.Logger, time.Time) ([]shard.Message, error) {
	return p.msgs, nil
}

type fakeWorker struct{ got *[]shard.Message }

func (w fakeWorker) Process(_ context.Context, _ *slog.Logger, m shard.Message, _ int) (store.ShardReport, error) {
	*w.got = append(*w.got, m)
	return store.ShardReport{}, nil
}

// TestInvocationsUseTheFunctionJSONNames drives each route the way the host would, with the names
// read from function.json: the trigger arrives under its binding name and the outputs come back
// under the output bindings' names.
func TestInvocationsUseTheFunctionJSONNames(t *testing.T) {
	fns, err := readFunctions(functionsDir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	msgs := shard.Split("c1", now, now.Add(5*time.Minute), []string{strings.Repeat("a", 26), strings.Repeat("b", 26)})
	var processed []shard.Message
	h := New(Deps{Planner: fakePlanner{msgs: msgs}, Worker: fakeWorker{got: &processed}})
	body, err := json.Marshal(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, bindings := range fns {
		data := map[string]any{}
		wantOut := map[string]bool{}
		for _, b := range bindings {
			switch {
			case b.Direction == "out":
				wantOut[b.Name] = true
			case b.Type == "timerTrigger":
				data[b.Name] = map[string]any{"Schedule": map[string]any{"AdjustForDST": true}, "IsPastDue": false,
					"ScheduleStatus": map[string]string{"Last": "2026-11-22T09:55:00+00:00", "Next": "2026-11-22T10:05:00+00:00", "LastUpdated": "2026-11-22T09:55:00+00:00"}}
			case b.Type == "queueTrigger":
				data[b.Name] = string(body) // the host sends the message as a JSON string
			case b.Type == "httpTrigger":
				data[b.Name] = map[string]any{"Url": "https://app.example/api/" + name, "Method": "GET", "Query": map[string]string{},
					"Headers": map[string][]string{}, "Params": map[string]string{}, "Body": nil}
			default:
				t.Errorf("functions/%s: binding %q of type %s: this test does not know how to feed it", name, b.Name, b.Type)
			}
		}
		payload, _ := json.Marshal(map[string]any{"Data": data, "Metadata": map[string]any{"DequeueCount": "1"}})
		req := httptest.NewRequest(http.MethodPost, "/"+name, bytes.NewReader(payload))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("POST /%s: %d %s", name, rec.Code, rec.Body)
			continue
		}
		var resp struct{ Outputs map[string]json.RawMessage }
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("POST /%s: %v: %s", name, err, rec.Body)
		}
		for out := range resp.Outputs {
			if !wantOut[out] {
				t.Errorf("POST /%s: output %q is no output binding of functions/%s/function.json", name, out, name)
			}
		}
		for out := range wantOut {
			if _, ok := resp.Outputs[out]; !ok {
				t.Errorf("POST /%s: no value for output binding %q", name, out)
			}
		}
	}
	if len(processed) != 1 || processed[0].CycleID != "c1" {
		t.Errorf("the shard function processed %+v, want the one message", processed)
	}
}
