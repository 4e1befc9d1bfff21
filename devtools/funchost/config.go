package funchost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/calstatus/calstatus/handler/azfunc"
)

// QueueSettings are the effective host.json extensions.queues settings.
type QueueSettings struct {
	BatchSize          int
	NewBatchThreshold  int
	MaxDequeueCount    int
	VisibilityTimeout  time.Duration // delay before a failed message is visible again
	MaxPollingInterval time.Duration
	MessageEncoding    string // "base64" or "none"
	// Lease is how long a dequeued message stays invisible while its function runs (renewed at
	// half-time): the host's 10 minutes unless overridden. A message whose delete or release was
	// lost comes back after it.
	Lease time.Duration
}

// QueueOverrides replaces individual host.json queue settings (nil = keep).
// Tests use it to make retries fast, e.g. VisibilityTimeout 0 and
// MaxPollingInterval 200ms.
type QueueOverrides struct {
	BatchSize          *int
	NewBatchThreshold  *int
	MaxDequeueCount    *int
	VisibilityTimeout  *time.Duration
	MaxPollingInterval *time.Duration
	MessageEncoding    *string
	Lease              *time.Duration
}

// Ptr returns a pointer to v (handy for QueueOverrides).
func Ptr[T any](v T) *T { return &v }

// hostConfig is what funchost uses from host.json.
type hostConfig struct {
	HandlerPath      string // defaultExecutablePath, as written
	WorkerPath       string // defaultWorkerPath, as written
	WorkingDirectory string
	Arguments        []string
	EnableForwarding bool
	Queues           QueueSettings
	RoutePrefix      string
	FunctionTimeout  time.Duration // 0 = unlimited
	ExtensionBundle  string
}

const (
	defaultFunctionTimeout = 30 * time.Minute // Flex Consumption / Premium default
	minPollingInterval     = 100 * time.Millisecond
)

// ParseTimeSpan parses a .NET TimeSpan as host.json uses them (the handler reads host.json with the
// same parser).
func ParseTimeSpan(s string) (time.Duration, error) { return azfunc.ParseTimeSpan(s) }

// formatTimeSpan renders d like .NET's TimeSpan.ToString() ("00:05:00").
func formatTimeSpan(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	s := fmt.Sprintf("%02d:%02d:%02d", int(d/time.Hour), int(d/time.Minute%60), int(d/time.Second%60))
	if frac := d % time.Second; frac != 0 {
		s += fmt.Sprintf(".%07d", int(frac/100))
	}
	if days > 0 {
		s = fmt.Sprintf("%d.%s", days, s)
	}
	if neg {
		s = "-" + s
	}
	return s
}

// LoadLocalSettings reads a Core Tools local.settings.json and returns its
// Values. Non-string values are converted to strings as Core Tools does.
func LoadLocalSettings(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		IsEncrypted bool                       `json:"IsEncrypted"`
		Values      map[string]json.RawMessage `json:"Values"`
	}
	if err := json.Unmarshal(stripBOM(data), &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.IsEncrypted {
		return nil, fmt.Errorf("%s: IsEncrypted is true; funchost cannot decrypt settings (run `func settings decrypt` or store them in plain text)", path)
	}
	out := make(map[string]string, len(doc.Values))
	for k, raw := range doc.Values {
		out[k] = rawToString(raw)
	}
	return out, nil
}

func stripBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

// rawToString converts a JSON value to the string .NET configuration would
// see: strings unquoted, null empty, anything else as its JSON text.
func rawToString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" {
		return ""
	}
	return t
}

// ---------------------------------------------------------------- host.json

// jmap is a case-insensitive view of a JSON object (.NET configuration keys
// are case-insensitive).
type jmap map[string]any

func (m jmap) get(path ...string) (any, bool) {
	var cur any = map[string]any(m)
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		found := false
		for k, v := range obj {
			if strings.EqualFold(k, p) {
				cur, found = v, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return cur, true
}

func (m jmap) str(path ...string) (string, bool) {
	v, ok := m.get(path...)
	if !ok || v == nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func (m jmap) integer(path ...string) (int, bool, error) {
	s, ok := m.str(path...)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, true, fmt.Errorf("host.json %s: %q is not an integer", strings.Join(path, "."), s)
	}
	return n, true, nil
}

func (m jmap) boolean(path ...string) (bool, bool, error) {
	s, ok := m.str(path...)
	if !ok {
		return false, false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, true, fmt.Errorf("host.json %s: %q is not a boolean", strings.Join(path, "."), s)
	}
	return b, true, nil
}

func (m jmap) timespan(path ...string) (time.Duration, bool, error) {
	s, ok := m.str(path...)
	if !ok {
		return 0, false, nil
	}
	d, err := ParseTimeSpan(s)
	if err != nil {
		return 0, true, fmt.Errorf("host.json %s: %w", strings.Join(path, "."), err)
	}
	return d, true, nil
}

// set stores value at path, matching existing keys case-insensitively.
func (m jmap) set(path []string, value any) {
	cur := map[string]any(m)
	for i, p := range path {
		key := p
		for k := range cur {
			if strings.EqualFold(k, p) {
				key = k
				break
			}
		}
		if i == len(path)-1 {
			cur[key] = value
			return
		}
		next, ok := cur[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[key] = next
		}
		cur = next
	}
}

// parseHostJSON reads host.json. App settings named
// AzureFunctionsJobHost__a__b override host.json value a.b, as in Azure.
func parseHostJSON(data []byte, settings map[string]string) (*hostConfig, error) {
	dec := json.NewDecoder(bytes.NewReader(stripBOM(data)))
	dec.UseNumber()
	raw := map[string]any{}
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("host.json: %w", err)
	}
	m := jmap(raw)
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		const prefix = "azurefunctionsjobhost__"
		if len(k) > len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			m.set(strings.Split(k[len(prefix):], "__"), settings[k])
		}
	}
	if v, _ := m.str("version"); v != "2.0" {
		return nil, errors.New(`host.json: "version" must be "2.0" (the Functions v4 host refuses anything else)`)
	}
	cfg := &hostConfig{RoutePrefix: "api", FunctionTimeout: defaultFunctionTimeout}
	cfg.HandlerPath, _ = m.str("customHandler", "description", "defaultExecutablePath")
	cfg.WorkerPath, _ = m.str("customHandler", "description", "defaultWorkerPath")
	cfg.WorkingDirectory, _ = m.str("customHandler", "description", "workingDirectory")
	if args, ok := m.get("customHandler", "description", "arguments"); ok {
		if list, ok := args.([]any); ok {
			for _, a := range list {
				cfg.Arguments = append(cfg.Arguments, fmt.Sprint(a))
			}
		}
	}
	var err error
	if cfg.EnableForwarding, _, err = m.boolean("customHandler", "enableForwardingHttpRequest"); err != nil {
		return nil, err
	}
	if p, ok := m.str("extensions", "http", "routePrefix"); ok {
		cfg.RoutePrefix = strings.Trim(p, "/")
	}
	if d, ok, err := m.timespan("functionTimeout"); err != nil {
		return nil, err
	} else if ok {
		if d < 0 {
			cfg.FunctionTimeout = 0 // -1: unlimited
		} else {
			cfg.FunctionTimeout = d
		}
	}
	if id, ok := m.str("extensionBundle", "id"); ok {
		ver, _ := m.str("extensionBundle", "version")
		cfg.ExtensionBundle = id + " " + ver
	}

	q := QueueSettings{BatchSize: 16, MaxDequeueCount: 5, MaxPollingInterval: time.Minute, MessageEncoding: "base64", Lease: queueLease}
	threshold := -1
	if n, ok, err := m.integer("extensions", "queues", "batchSize"); err != nil {
		return nil, err
	} else if ok {
		q.BatchSize = n
	}
	if n, ok, err := m.integer("extensions", "queues", "newBatchThreshold"); err != nil {
		return nil, err
	} else if ok {
		threshold = n
	}
	if n, ok, err := m.integer("extensions", "queues", "maxDequeueCount"); err != nil {
		return nil, err
	} else if ok {
		q.MaxDequeueCount = n
	}
	if d, ok, err := m.timespan("extensions", "queues", "visibilityTimeout"); err != nil {
		return nil, err
	} else if ok {
		q.VisibilityTimeout = d
	}
	if d, ok, err := m.timespan("extensions", "queues", "maxPollingInterval"); err != nil {
		return nil, err
	} else if ok {
		q.MaxPollingInterval = d
	}
	if s, ok := m.str("extensions", "queues", "messageEncoding"); ok {
		q.MessageEncoding = strings.ToLower(s)
	}
	if threshold < 0 {
		threshold = q.BatchSize / 2
	}
	q.NewBatchThreshold = threshold
	cfg.Queues = q
	return cfg, nil
}

func (q *QueueSettings) apply(o *QueueOverrides) {
	if o == nil {
		return
	}
	thresholdSet := o.NewBatchThreshold != nil
	if o.BatchSize != nil {
		q.BatchSize = *o.BatchSize
		if !thresholdSet && q.NewBatchThreshold > q.BatchSize {
			q.NewBatchThreshold = q.BatchSize / 2
		}
	}
	if thresholdSet {
		q.NewBatchThreshold = *o.NewBatchThreshold
	}
	if o.MaxDequeueCount != nil {
		q.MaxDequeueCount = *o.MaxDequeueCount
	}
	if o.VisibilityTimeout != nil {
		q.VisibilityTimeout = *o.VisibilityTimeout
	}
	if o.MaxPollingInterval != nil {
		q.MaxPollingInterval = *o.MaxPollingInterval
	}
	if o.MessageEncoding != nil {
		q.MessageEncoding = strings.ToLower(*o.MessageEncoding)
	}
	if o.Lease != nil {
		q.Lease = *o.Lease
	}
}

// validate applies the host's limits.
func (q *QueueSettings) validate(allowFastPolling bool) error {
	if q.BatchSize < 1 || q.BatchSize > 32 {
		return fmt.Errorf("extensions.queues.batchSize must be between 1 and 32, got %d", q.BatchSize)
	}
	if q.NewBatchThreshold < 0 {
		return fmt.Errorf("extensions.queues.newBatchThreshold must be >= 0, got %d", q.NewBatchThreshold)
	}
	if q.MaxDequeueCount < 1 {
		return fmt.Errorf("extensions.queues.maxDequeueCount must be >= 1, got %d", q.MaxDequeueCount)
	}
	if q.VisibilityTimeout < 0 || q.VisibilityTimeout > 7*24*time.Hour {
		return fmt.Errorf("extensions.queues.visibilityTimeout must be between 0 and 7 days, got %s", q.VisibilityTimeout)
	}
	if q.MaxPollingInterval < minPollingInterval && !allowFastPolling {
		return fmt.Errorf("extensions.queues.maxPollingInterval must be at least 00:00:00.1, got %s", q.MaxPollingInterval)
	}
	if q.MaxPollingInterval <= 0 {
		q.MaxPollingInterval = 10 * time.Millisecond
	}
	switch q.MessageEncoding {
	case "base64", "none":
	default:
		return fmt.Errorf(`extensions.queues.messageEncoding must be "base64" or "none", got %q`, q.MessageEncoding)
	}
	return nil
}

// ---------------------------------------------------------------- settings

var settingRef = regexp.MustCompile(`%([^%]+)%`)

// resolveSettingRefs replaces every %NAME% in s by app setting NAME, as the
// host's name resolver does for binding attributes.
func resolveSettingRefs(s string, settings map[string]string) (string, error) {
	var missing error
	out := settingRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[1 : len(ref)-1]
		v, ok := lookupSetting(settings, name)
		if !ok && missing == nil {
			missing = fmt.Errorf("'%s' does not resolve to a value (app setting %q is not defined)", ref, name)
		}
		return v
	})
	return out, missing
}

// lookupSetting finds a setting. Configuration keys are case-insensitive in
// the host (environment variables are exact on Linux, but app settings in
// Azure are case-insensitive), so try exact first, then case-insensitive.
// "a:b" and "a__b" are equivalent.
func lookupSetting(settings map[string]string, name string) (string, bool) {
	if v, ok := settings[name]; ok {
		return v, true
	}
	alt := strings.ReplaceAll(name, ":", "__")
	for k, v := range settings {
		if strings.EqualFold(k, name) || strings.EqualFold(k, alt) {
			return v, true
		}
	}
	return "", false
}

// ---------------------------------------------------------------- storage

const (
	devStoreAccount = "devstoreaccount1"
	devStoreKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// expandConnectionString turns UseDevelopmentStorage=true into the full
// Azurite connection string; other strings are returned unchanged.
func expandConnectionString(cs string) string {
	parts := map[string]string{}
	for _, p := range strings.Split(strings.TrimSpace(cs), ";") {
		k, v, ok := strings.Cut(p, "=")
		if ok {
			parts[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	if !strings.EqualFold(parts["usedevelopmentstorage"], "true") {
		return cs
	}
	host := "http://127.0.0.1"
	if proxy := parts["developmentstorageproxyuri"]; proxy != "" {
		host = strings.TrimRight(proxy, "/")
		if i := strings.LastIndex(host, ":"); i > len("https:") {
			host = host[:i]
		}
	}
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s:10000/%s;QueueEndpoint=%s:10001/%s;TableEndpoint=%s:10002/%s;",
		devStoreAccount, devStoreKey, host, devStoreAccount, host, devStoreAccount, host, devStoreAccount)
}

// resolveConnection finds the storage connection string for a binding's
// "connection" property like the WebJobs SDK: "AzureWebJobs<name>" first,
// then "<name>"; empty means "Storage" (AzureWebJobsStorage).
func resolveConnection(connection string, settings map[string]string) (string, error) {
	if connection == "" {
		connection = "Storage"
	}
	for _, name := range []string{"AzureWebJobs" + connection, connection, "ConnectionStrings:" + connection} {
		if v, ok := lookupSetting(settings, name); ok && strings.TrimSpace(v) != "" {
			return expandConnectionString(v), nil
		}
	}
	for k := range settings {
		if len(k) > len(connection)+2 && strings.EqualFold(k[:len(connection)+2], connection+"__") {
			return "", fmt.Errorf("connection %q is identity-based (%s); funchost only supports connection strings (use UseDevelopmentStorage=true locally)", connection, k)
		}
	}
	return "", fmt.Errorf("Storage account connection string 'AzureWebJobs%s' does not exist. Make sure that it is a defined App Setting.", connection)
}

var queueNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9])*$`)

// normalizeQueueName lowercases and validates like the queue extension.
func normalizeQueueName(name string) (string, error) {
	n := strings.ToLower(name)
	if len(n) < 3 || len(n) > 63 || !queueNameRE.MatchString(n) {
		return "", fmt.Errorf("invalid queue name %q: 3-63 characters, lowercase letters, digits and single hyphens, starting and ending with a letter or digit", name)
	}
	return n, nil
}

// ---------------------------------------------------------------- functions

// Binding is one entry of function.json "bindings", after %SETTING%
// resolution.
type Binding struct {
	Type       string // as written, e.g. "queueTrigger"
	Direction  string
	Name       string
	QueueName  string // queue, queueTrigger (normalised)
	Connection string // setting name, queue bindings
	DataType   string

	connStr string
}

// FunctionInfo describes an indexed function.
type FunctionInfo struct {
	Name     string
	Dir      string
	Trigger  string // timerTrigger, queueTrigger, httpTrigger
	Disabled bool
	// Timer
	Schedule     string
	NextRun      time.Time
	RunOnStartup bool
	// Queue
	Queue      string
	Connection string
	// HTTP
	Route     string // without the route prefix
	Methods   []string
	AuthLevel string
	URL       string
	// Everything
	TriggerBinding Binding
	Outputs        []Binding
}

type function struct {
	FunctionInfo
	trigger  Binding
	outputs  []Binding
	schedule Schedule
	monitor  bool // timer ScheduleStatus tracked (useMonitor)
	route    *routeTemplate
}

func (f *function) triggerType() string { return strings.ToLower(f.trigger.Type) }

// indexFunctions reads every <dir>/<Name>/function.json. Each function that
// fails to index gets an error (the real host marks it "in error").
func indexFunctions(dir string, settings map[string]string) ([]*function, map[string]error, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading functions directory: %w", err)
	}
	var fns []*function
	errs := map[string]error{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name(), "function.json")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs[e.Name()] = err
			continue
		}
		fn, err := parseFunctionJSON(e.Name(), filepath.Join(dir, e.Name()), data, settings)
		if err != nil {
			errs[e.Name()] = err
			continue
		}
		fns = append(fns, fn)
	}
	return fns, errs, nil
}

func parseFunctionJSON(name, dir string, data []byte, settings map[string]string) (*function, error) {
	dec := json.NewDecoder(bytes.NewReader(stripBOM(data)))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("function.json: %w", err)
	}
	m := jmap(doc)
	fn := &function{FunctionInfo: FunctionInfo{Name: name, Dir: dir}}
	if s, ok := m.str("disabled"); ok {
		if b, err := strconv.ParseBool(s); err == nil {
			fn.Disabled = b
		} else if v, ok := lookupSetting(settings, s); ok { // "disabled": "SETTING_NAME"
			fn.Disabled, _ = strconv.ParseBool(v)
		}
	}
	if v, ok := lookupSetting(settings, "AzureWebJobs."+name+".Disabled"); ok {
		if b, err := strconv.ParseBool(v); err == nil && b {
			fn.Disabled = true
		}
	}
	rawBindings, _ := m.get("bindings")
	list, ok := rawBindings.([]any)
	if !ok || len(list) == 0 {
		return nil, errors.New(`function.json has no "bindings"`)
	}
	var triggers int
	for i, rb := range list {
		obj, ok := rb.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("binding #%d is not an object", i)
		}
		b := jmap(obj)
		typ, _ := b.str("type")
		dir, _ := b.str("direction")
		bname, _ := b.str("name")
		if typ == "" || bname == "" {
			return nil, fmt.Errorf("binding #%d: \"type\" and \"name\" are required", i)
		}
		binding := Binding{Type: typ, Direction: strings.ToLower(dir), Name: bname}
		binding.DataType, _ = b.str("dataType")
		resolve := func(key string) (string, error) {
			v, _ := b.str(key)
			r, err := resolveSettingRefs(v, settings)
			if err != nil {
				return "", fmt.Errorf("binding %q: %s: %w", bname, key, err)
			}
			return r, nil
		}
		lt := strings.ToLower(typ)
		switch lt {
		case "timertrigger":
			triggers++
			fn.trigger = binding
			expr, err := resolve("schedule")
			if err != nil {
				return nil, err
			}
			if expr == "" {
				return nil, fmt.Errorf("binding %q: timerTrigger needs a \"schedule\"", bname)
			}
			sched, err := parseTimerSchedule(expr)
			if err != nil {
				return nil, fmt.Errorf("binding %q: %w", bname, err)
			}
			fn.schedule, fn.Schedule = sched, expr
			if v, ok, err := b.boolean("runOnStartup"); err != nil {
				return nil, err
			} else if ok {
				fn.RunOnStartup = v
			}
			useMonitor := true
			if v, ok, err := b.boolean("useMonitor"); err != nil {
				return nil, err
			} else if ok {
				useMonitor = v
			}
			// The host disables the monitor for schedules more frequent than
			// once a minute; ScheduleStatus is then null.
			n1 := sched.Next(time.Now())
			n2 := sched.Next(n1)
			fn.monitor = useMonitor && !n1.IsZero() && !n2.IsZero() && n2.Sub(n1) >= time.Minute
		case "queuetrigger", "queue":
			if lt == "queuetrigger" {
				triggers++
				if binding.Direction != "" && binding.Direction != "in" {
					return nil, fmt.Errorf("binding %q: queueTrigger must have direction \"in\"", bname)
				}
			} else if binding.Direction != "out" {
				return nil, fmt.Errorf("binding %q: queue input bindings are not supported (only direction \"out\")", bname)
			}
			qn, err := resolve("queueName")
			if err != nil {
				return nil, err
			}
			if strings.ContainsAny(qn, "{}") {
				return nil, fmt.Errorf("binding %q: queueName %q uses a binding expression, which funchost does not support", bname, qn)
			}
			if binding.QueueName, err = normalizeQueueName(qn); err != nil {
				return nil, fmt.Errorf("binding %q: %w", bname, err)
			}
			binding.Connection, _ = b.str("connection")
			if binding.connStr, err = resolveConnection(binding.Connection, settings); err != nil {
				return nil, fmt.Errorf("binding %q: %w", bname, err)
			}
			if lt == "queuetrigger" {
				fn.trigger = binding
				fn.Queue, fn.Connection = binding.QueueName, binding.Connection
			} else {
				fn.outputs = append(fn.outputs, binding)
			}
		case "httptrigger":
			triggers++
			fn.trigger = binding
			route, err := resolve("route")
			if err != nil {
				return nil, err
			}
			route = strings.Trim(route, "/")
			if route == "" {
				route = name
			}
			fn.Route = route
			if fn.route, err = parseRoute(route); err != nil {
				return nil, fmt.Errorf("binding %q: %w", bname, err)
			}
			if ms, ok := b.get("methods"); ok {
				if arr, ok := ms.([]any); ok {
					for _, x := range arr {
						fn.Methods = append(fn.Methods, strings.ToUpper(fmt.Sprint(x)))
					}
				}
			}
			fn.AuthLevel, _ = b.str("authLevel")
		case "http":
			if binding.Direction != "out" {
				return nil, fmt.Errorf("binding %q: http binding must have direction \"out\"", bname)
			}
			fn.outputs = append(fn.outputs, binding)
		default:
			return nil, fmt.Errorf("binding %q: type %q is not supported by funchost (timerTrigger, queueTrigger, httpTrigger, http, queue)", bname, typ)
		}
	}
	switch {
	case triggers == 0:
		return nil, errors.New("function.json has no trigger binding")
	case triggers > 1:
		return nil, errors.New("function.json has more than one trigger binding")
	}
	fn.Trigger = fn.trigger.Type
	fn.TriggerBinding = fn.trigger
	fn.Outputs = fn.outputs
	hasHTTPOut := false
	for _, o := range fn.outputs {
		if strings.EqualFold(o.Type, "http") {
			hasHTTPOut = true
		}
	}
	if hasHTTPOut && fn.triggerType() != "httptrigger" {
		return nil, errors.New("an http output binding needs an httpTrigger")
	}
	return fn, nil
}
