package funchost

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTimeSpan(t *testing.T) {
	ok := map[string]time.Duration{
		"00:00:30":         30 * time.Second,
		"00:05:00":         5 * time.Minute,
		"01:02:03":         time.Hour + 2*time.Minute + 3*time.Second,
		"1.00:00:00":       24 * time.Hour,
		"2.03:04:05":       51*time.Hour + 4*time.Minute + 5*time.Second,
		"00:00:00.5":       500 * time.Millisecond,
		"00:00:00.1000000": 100 * time.Millisecond,
		"10:30":            10*time.Hour + 30*time.Minute,
		"1":                24 * time.Hour,
		"-1":               -24 * time.Hour,
		"-00:00:01":        -time.Second,
	}
	for in, want := range ok {
		got, err := ParseTimeSpan(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeSpan(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "24:00:00", "00:60:00", "00:00:60", "1:2:3:4", "00:00:00.12345678", "x.00:00:00"} {
		if _, err := ParseTimeSpan(in); err == nil {
			t.Errorf("ParseTimeSpan(%q): want error", in)
		}
	}
	if s := formatTimeSpan(5 * time.Minute); s != "00:05:00" {
		t.Errorf("formatTimeSpan = %q", s)
	}
	if s := formatTimeSpan(26*time.Hour + 1500*time.Millisecond); s != "1.02:00:01.5000000" {
		t.Errorf("formatTimeSpan = %q", s)
	}
}

func TestHostJSON(t *testing.T) {
	cfg, err := parseHostJSON([]byte(`{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"calstatus"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := QueueSettings{BatchSize: 16, NewBatchThreshold: 8, MaxDequeueCount: 5, VisibilityTimeout: 0, MaxPollingInterval: time.Minute, MessageEncoding: "base64", Lease: 10 * time.Minute}
	if cfg.Queues != want {
		t.Errorf("defaults = %+v, want %+v", cfg.Queues, want)
	}
	if cfg.RoutePrefix != "api" || cfg.HandlerPath != "calstatus" || cfg.FunctionTimeout != 30*time.Minute {
		t.Errorf("cfg = %+v", cfg)
	}

	data, err := os.ReadFile("testdata/app/host.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = parseHostJSON(data, map[string]string{
		"AzureFunctionsJobHost__extensions__queues__batchSize": "4",
		"AzureFunctionsJobHost__functionTimeout":               "00:00:10",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Queues.BatchSize != 4 || cfg.Queues.NewBatchThreshold != 8 || cfg.Queues.VisibilityTimeout != 30*time.Second ||
		cfg.Queues.MaxPollingInterval != 2*time.Second || cfg.FunctionTimeout != 10*time.Second {
		t.Errorf("testdata host.json with overrides = %+v timeout %v", cfg.Queues, cfg.FunctionTimeout)
	}
	// batchSize alone → threshold batchSize/2
	cfg, _ = parseHostJSON([]byte(`{"version":"2.0","extensions":{"queues":{"batchSize":10}},"functionTimeout":"-1"}`), nil)
	if cfg.Queues.NewBatchThreshold != 5 || cfg.FunctionTimeout != 0 {
		t.Errorf("got %+v, timeout %v", cfg.Queues, cfg.FunctionTimeout)
	}
	if _, err := parseHostJSON([]byte(`{"extensions":{}}`), nil); err == nil {
		t.Error("missing version accepted")
	}
	q := QueueSettings{BatchSize: 33, MaxDequeueCount: 5, MaxPollingInterval: time.Second, MessageEncoding: "base64"}
	if err := q.validate(false); err == nil {
		t.Error("batchSize 33 accepted")
	}
}

func TestLoadLocalSettings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "local.settings.json")
	os.WriteFile(p, []byte("\xef\xbb\xbf"+`{"IsEncrypted":false,"Values":{"A":"x","N":5,"B":true,"Z":null},"Host":{"LocalHttpPort":7071}}`), 0o644)
	got, err := LoadLocalSettings(p)
	if err != nil {
		t.Fatal(err)
	}
	if got["A"] != "x" || got["N"] != "5" || got["B"] != "true" || got["Z"] != "" || len(got) != 4 {
		t.Errorf("got %v", got)
	}
	os.WriteFile(p, []byte(`{"IsEncrypted":true,"Values":{}}`), 0o644)
	if _, err := LoadLocalSettings(p); err == nil {
		t.Error("encrypted settings accepted")
	}
}

func TestSettingResolution(t *testing.T) {
	s := map[string]string{"Q": "jobs", "Env": "dev"}
	if got, err := resolveSettingRefs("%Q%-%Env%", s); err != nil || got != "jobs-dev" {
		t.Errorf("got %q, %v", got, err)
	}
	_, err := resolveSettingRefs("%MISSING_ONE%", s)
	if err == nil || !strings.Contains(err.Error(), "MISSING_ONE") {
		t.Errorf("err = %v", err)
	}
	_, err = parseFunctionJSON("F", "", []byte(`{"bindings":[{"type":"timerTrigger","name":"t","schedule":"%SCHED%"}]}`), s)
	if err == nil || !strings.Contains(err.Error(), "'%SCHED%' does not resolve to a value") {
		t.Errorf("err = %v", err)
	}
	// connection lookup: AzureWebJobs<name> first, then <name>
	cs, err := resolveConnection("Foo", map[string]string{"Foo": "UseDevelopmentStorage=true"})
	if err != nil || !strings.Contains(cs, "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1") {
		t.Errorf("cs = %q, %v", cs, err)
	}
	if _, err := resolveConnection("Nope", map[string]string{}); err == nil || !strings.Contains(err.Error(), "AzureWebJobsNope") {
		t.Errorf("err = %v", err)
	}
	if _, err := normalizeQueueName("Bad--Name"); err == nil {
		t.Error("bad queue name accepted")
	}
	if n, err := normalizeQueueName("MyQueue"); err != nil || n != "myqueue" {
		t.Errorf("normalize = %q %v", n, err)
	}
}

func TestQueueMessagesFor(t *testing.T) {
	tests := []struct {
		in        string
		want      []string
		warnCount int
	}{
		{`[{"n":1},{"n": 2},{"n":3}]`, []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}, 0},
		{`{"a": "b"}`, []string{`{"a":"b"}`}, 0},
		{`"hello world"`, []string{"hello world"}, 0},
		{`"test"`, []string{"\xb5\xeb\x2d"}, 1}, // valid base64: decoded
		{`"0123456789abcdef0123456789abcdef"`, nil, 1},
		{`["x y", "abcd", 5, null]`, []string{"x y", "i\xb7\x1d", "5"}, 1},
		{`null`, nil, 0},
		{`[]`, nil, 0},
	}
	for _, tt := range tests {
		got, warns, err := queueMessagesFor(json.RawMessage(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if len(warns) != tt.warnCount {
			t.Errorf("%s: %d warnings %v, want %d", tt.in, len(warns), warns, tt.warnCount)
		}
		if tt.want == nil && tt.warnCount > 0 {
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %d messages %q, want %q", tt.in, len(got), got, tt.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tt.want[i] {
				t.Errorf("%s: message %d = %q, want %q", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

func TestRoutes(t *testing.T) {
	rt, err := parseRoute("items/{id:int}/{opt?}")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]map[string]string{
		"items/42":      {"id": "42"},
		"ITEMS/42/x":    {"id": "42", "opt": "x"},
		"items/abc":     nil,
		"items":         nil,
		"items/1/2/3":   nil,
		"items/7/a%20b": {"id": "7", "opt": "a b"},
	} {
		got, ok := rt.match(path)
		if want == nil {
			if ok {
				t.Errorf("%s matched %v", path, got)
			}
			continue
		}
		if !ok || len(got) != len(want) {
			t.Errorf("%s: got %v %v, want %v", path, got, ok, want)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", path, k, got[k], v)
			}
		}
	}
	rt, _ = parseRoute("files/{*rest}")
	if got, ok := rt.match("files/a/b/c"); !ok || got["rest"] != "a/b/c" {
		t.Errorf("catch-all: %v %v", got, ok)
	}
	if _, err := parseRoute("a/{x?}/b"); err == nil {
		t.Error("optional in the middle accepted")
	}
}
