// Package funchost is a local stand-in for the Azure Functions host (v4,
// custom handler, extension bundle 4.x) for development and tests, where
// Azure Functions Core Tools cannot be installed.
//
// It starts the custom handler executable named in host.json, indexes the
// function.json folders, and drives the handler exactly the way the real host
// does: timer triggers (NCRONTAB), Storage queue triggers (batching,
// retries, poison queues, base64 message encoding) and HTTP triggers, with
// queue and http output bindings. The JSON it sends reproduces the real
// host's quirks (queue message text and metadata JSON-encoded twice,
// DequeueCount as a string, ...), and it applies output bindings the same
// way (arrays become several messages; strings that happen to be valid
// base64 are decoded first).
//
// Things it deliberately does not emulate: function keys (every HTTP
// function is anonymous, like Core Tools), timer singleton locks and the
// persisted schedule monitor, scaling, and bindings other than timer, queue
// and http.
package funchost

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// HostVersion is the Functions host version funchost reports to the handler
// (X-Azure-Functions-HostVersion, User-Agent).
const HostVersion = "4.1040.0"

// Options configure a Host.
type Options struct {
	// AppDir holds host.json (and, in Azure, the function folders).
	AppDir string
	// FunctionsDir holds the <FunctionName>/function.json folders. Default:
	// AppDir/functions if it exists, else AppDir (the Azure layout).
	FunctionsDir string
	// HandlerPath overrides host.json customHandler.description.defaultExecutablePath.
	HandlerPath string
	// Settings are the app settings (e.g. from LoadLocalSettings), merged over
	// the process environment. They resolve %SETTING% binding values and
	// connection names, and are the handler's environment.
	Settings map[string]string
	// HTTPAddr is where HTTP triggers and the admin API are served.
	// Default 127.0.0.1:7071; use 127.0.0.1:0 for a free port.
	HTTPAddr string
	// Logf receives every log line (default: the standard logger).
	Logf func(format string, args ...any)
	// DisableTimers stops timers from firing on schedule (and on startup);
	// fire them with RunFunction.
	DisableTimers bool
	// Overrides replaces host.json queue settings (tests).
	Overrides *QueueOverrides

	// StartupTimeout bounds the wait for the handler to answer GET /
	// (default 30s).
	StartupTimeout time.Duration
	// ShutdownTimeout bounds how long Close waits for running invocations
	// before cancelling them (default 10s).
	ShutdownTimeout time.Duration
	// TolerateFunctionErrors makes Start skip functions that fail to index
	// (as the real host does, which logs "The 'X' function is in error")
	// instead of failing.
	TolerateFunctionErrors bool
	// Location is the time zone of timer schedules. Default: the
	// WEBSITE_TIME_ZONE setting (an IANA name) or UTC, as on Linux in Azure.
	Location *time.Location
}

// Result is the outcome of one invocation.
type Result struct {
	Function     string
	InvocationID string
	OK           bool
	Err          error
	StatusCode   int                        // the handler's HTTP status (0 if none)
	Outputs      map[string]json.RawMessage // the handler's Outputs
	Logs         []string                   // the handler's Logs
	ReturnValue  json.RawMessage
	Duration     time.Duration
	Request      []byte // the exact JSON body sent to the handler
	Response     []byte // the handler's raw answer
}

// EventKind tells what an Event reports.
type EventKind string

const (
	EventInvocation  EventKind = "invocation"   // an invocation finished (OK or not)
	EventRetry       EventKind = "retry"        // a failed queue message was released for another try
	EventPoison      EventKind = "poison"       // a queue message was moved to <queue>-poison
	EventHandlerExit EventKind = "handler-exit" // the handler process exited unexpectedly
	// EventHandlerRestart: after KillHandler, the new handler process is ready.
	EventHandlerRestart EventKind = "handler-restart"
)

// Event is published on Host.Events (never blocking: dropped if the buffer
// is full).
type Event struct {
	Kind         EventKind
	Function     string
	InvocationID string
	Queue        string
	MessageID    string
	DequeueCount int64
	OK           bool
	Err          error
	Duration     time.Duration
	Logs         []string
	Result       *Result // for EventInvocation
	Time         time.Time
}

// Host is a running local Functions host.
type Host struct {
	opts         Options
	logf         func(string, ...any)
	appDir       string
	functionsDir string
	settings     map[string]string
	cfg          *hostConfig
	fns          []*function
	byName       map[string]*function
	loc          *time.Location

	// handler is read by concurrent invocations and swapped by KillHandler;
	// restartMu serializes KillHandler and Close's final stop.
	handler   atomic.Pointer[handlerConn]
	restartMu sync.Mutex
	closed    bool // guarded by restartMu

	httpSrv *http.Server
	httpURL string

	// pollCtx stops listeners and timers; invCtx aborts invocations.
	pollCtx    context.Context
	stopPoll   context.CancelFunc
	invCtx     context.Context
	cancelInv  context.CancelFunc
	bg         sync.WaitGroup // listeners, timers, message workers
	inflight   atomic.Int64
	inflightMu sync.Mutex
	inflightBy map[string]int // per function

	events chan Event

	storage   *storageClients
	listeners []*queueListener
	timers    map[string]*timerState

	// Listeners read-hold queueMu around each dequeue, so PauseQueues can
	// wait for the dequeues in progress; paused is non-nil while paused and
	// is closed by ResumeQueues.
	queueMu sync.RWMutex
	paused  chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Start indexes the app, starts the handler and waits until it answers,
// then starts the HTTP server, queue listeners and timers. ctx bounds the
// startup only; the host runs until Close.
func Start(ctx context.Context, opts Options) (*Host, error) {
	h := &Host{opts: opts, logf: opts.Logf, inflightBy: map[string]int{}, events: make(chan Event, 4096), timers: map[string]*timerState{}}
	if h.logf == nil {
		h.logf = log.Printf
	}
	if opts.StartupTimeout <= 0 {
		h.opts.StartupTimeout = 30 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		h.opts.ShutdownTimeout = 10 * time.Second
	}
	appDir := opts.AppDir
	if appDir == "" {
		appDir = "."
	}
	var err error
	if h.appDir, err = filepath.Abs(appDir); err != nil {
		return nil, err
	}

	// App settings: the process environment, overlaid with Options.Settings.
	h.settings = map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			h.settings[k] = v
		}
	}
	for k, v := range opts.Settings {
		h.settings[k] = v
	}

	hostJSON, err := os.ReadFile(filepath.Join(h.appDir, "host.json"))
	if err != nil {
		return nil, fmt.Errorf("funchost: %w (AppDir must hold host.json)", err)
	}
	if h.cfg, err = parseHostJSON(hostJSON, h.settings); err != nil {
		return nil, fmt.Errorf("funchost: %w", err)
	}
	h.cfg.Queues.apply(opts.Overrides)
	fastPolling := opts.Overrides != nil && opts.Overrides.MaxPollingInterval != nil
	if err := h.cfg.Queues.validate(fastPolling); err != nil {
		return nil, fmt.Errorf("funchost: host.json: %w", err)
	}

	h.loc = opts.Location
	if h.loc == nil {
		h.loc = time.UTC
		if tz, ok := lookupSetting(h.settings, "WEBSITE_TIME_ZONE"); ok && tz != "" {
			if l, err := time.LoadLocation(tz); err == nil {
				h.loc = l
			} else {
				return nil, fmt.Errorf("funchost: WEBSITE_TIME_ZONE %q: %w (use an IANA name; Windows time zone names only work on Windows plans)", tz, err)
			}
		}
	}

	h.functionsDir = opts.FunctionsDir
	if h.functionsDir == "" {
		h.functionsDir = h.appDir
		if st, err := os.Stat(filepath.Join(h.appDir, "functions")); err == nil && st.IsDir() {
			h.functionsDir = filepath.Join(h.appDir, "functions")
		}
	} else if !filepath.IsAbs(h.functionsDir) {
		if h.functionsDir, err = filepath.Abs(h.functionsDir); err != nil {
			return nil, err
		}
	}
	fns, fnErrs, err := indexFunctions(h.functionsDir, h.settings)
	if err != nil {
		return nil, fmt.Errorf("funchost: %w", err)
	}
	if len(fnErrs) > 0 {
		names := make([]string, 0, len(fnErrs))
		for n := range fnErrs {
			names = append(names, n)
		}
		sort.Strings(names)
		var msgs []string
		for _, n := range names {
			msg := fmt.Sprintf("The '%s' function is in error: %v", n, fnErrs[n])
			msgs = append(msgs, msg)
			if opts.TolerateFunctionErrors {
				h.logf("funchost: %s", msg)
			}
		}
		if !opts.TolerateFunctionErrors {
			return nil, fmt.Errorf("funchost: error indexing functions in %s:\n  %s", h.functionsDir, strings.Join(msgs, "\n  "))
		}
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	h.fns = fns
	h.byName = map[string]*function{}
	needsStorage := false
	for _, f := range fns {
		h.byName[strings.ToLower(f.Name)] = f
		if f.triggerType() != "httptrigger" && !f.Disabled {
			needsStorage = true
		}
		if f.triggerType() == "timertrigger" {
			h.timers[f.Name] = &timerState{}
		}
	}
	if len(fns) == 0 {
		h.logf("funchost: no functions found in %s", h.functionsDir)
	}
	if v, ok := lookupSetting(h.settings, "AzureWebJobsStorage"); needsStorage && (!ok || strings.TrimSpace(v) == "") {
		return nil, errors.New("funchost: Missing value for AzureWebJobsStorage in local.settings.json. This is required for all triggers other than httptrigger, kafkatrigger, orchestrationTrigger, activityTrigger, entityTrigger. (UseDevelopmentStorage=true works with Azurite)")
	}
	h.storage = newStorageClients()

	h.pollCtx, h.stopPoll = context.WithCancel(context.Background())
	h.invCtx, h.cancelInv = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			h.stopPoll()
			h.cancelInv()
			if h.httpSrv != nil {
				h.httpSrv.Close()
			}
			if hc := h.handler.Load(); hc != nil {
				hc.proc.stop()
			}
		}
	}()

	h.logf("funchost: starting Azure Functions host %s (custom handler) for %s", HostVersion, h.appDir)
	if h.cfg.ExtensionBundle != "" {
		h.logf("funchost: extension bundle %s (emulated: timer, queue, http)", h.cfg.ExtensionBundle)
	}
	hc, err := h.startHandler(ctx)
	if err != nil {
		return nil, fmt.Errorf("funchost: %w", err)
	}
	h.handler.Store(hc)
	if err := h.startHTTP(); err != nil {
		return nil, fmt.Errorf("funchost: %w", err)
	}
	h.logFunctions()
	for _, f := range h.fns {
		if f.Disabled {
			continue
		}
		switch f.triggerType() {
		case "queuetrigger":
			l, err := h.newQueueListener(f)
			if err != nil {
				return nil, fmt.Errorf("funchost: function %s: %w", f.Name, err)
			}
			h.listeners = append(h.listeners, l)
		}
	}
	for _, l := range h.listeners {
		h.bg.Add(1)
		go l.run()
	}
	if !opts.DisableTimers {
		for _, f := range h.fns {
			if !f.Disabled && f.triggerType() == "timertrigger" {
				h.bg.Add(1)
				go h.runTimer(f)
			}
		}
	}
	ok = true
	h.logf("funchost: host started (%d functions, HTTP on %s)", len(h.fns), h.httpURL)
	return h, nil
}

func (h *Host) logFunctions() {
	h.logf("funchost: functions (from %s):", h.functionsDir)
	for _, f := range h.fns {
		var desc string
		switch f.triggerType() {
		case "timertrigger":
			next := f.schedule.Next(time.Now().In(h.loc))
			f.NextRun = next
			desc = fmt.Sprintf("timerTrigger schedule '%s' next %s", f.Schedule, next.Format(time.RFC3339))
			if f.RunOnStartup {
				desc += " (runOnStartup)"
			}
			if h.opts.DisableTimers {
				desc += " [timers disabled: fire with RunFunction or POST /admin/functions/" + f.Name + "]"
			}
		case "queuetrigger":
			desc = fmt.Sprintf("queueTrigger queue '%s'", f.Queue)
		case "httptrigger":
			methods := "ALL"
			if len(f.Methods) > 0 {
				methods = strings.Join(f.Methods, ",")
			}
			desc = fmt.Sprintf("[%s] %s", methods, f.URL)
		}
		var outs []string
		for _, o := range f.outputs {
			if o.QueueName != "" {
				outs = append(outs, fmt.Sprintf("%s->queue '%s'", o.Name, o.QueueName))
			} else {
				outs = append(outs, fmt.Sprintf("%s->%s", o.Name, o.Type))
			}
		}
		if len(outs) > 0 {
			desc += "; outputs " + strings.Join(outs, ", ")
		}
		if f.Disabled {
			desc += " (disabled)"
		}
		h.logf("funchost:   %s: %s", f.Name, desc)
	}
}

// Functions lists the indexed functions.
func (h *Host) Functions() []FunctionInfo {
	out := make([]FunctionInfo, 0, len(h.fns))
	for _, f := range h.fns {
		fi := f.FunctionInfo
		if f.schedule != nil {
			fi.NextRun = f.schedule.Next(time.Now().In(h.loc))
			if st := h.timers[f.Name]; st != nil {
				st.mu.Lock()
				if !st.next.IsZero() {
					fi.NextRun = st.next
				}
				st.mu.Unlock()
			}
		}
		out = append(out, fi)
	}
	return out
}

// HTTPURL is the base URL of the HTTP server, e.g. http://127.0.0.1:7071.
func (h *Host) HTTPURL() string { return h.httpURL }

// QueueSettings are the queue settings in effect: host.json's, with Options.Overrides applied.
func (h *Host) QueueSettings() QueueSettings { return h.cfg.Queues }

// HandlerURL is the base URL of the current custom handler process.
func (h *Host) HandlerURL() string { return h.handler.Load().url }

// HandlerPID is the current handler process's id (to read its resource use).
func (h *Host) HandlerPID() int {
	if p := h.handler.Load().proc; p != nil && p.cmd != nil && p.cmd.Process != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Events is a feed of finished invocations, retries, poisonings and handler
// exits and restarts. It is buffered and never blocks the host: read it or ignore it.
func (h *Host) Events() <-chan Event { return h.events }

// HandlerDone is closed when the current handler process has exited
// (KillHandler closes it too: call it again afterwards for the new process).
func (h *Host) HandlerDone() <-chan struct{} { return h.handler.Load().proc.exited }

// HandlerErr is the current handler's exit status once HandlerDone is closed.
func (h *Host) HandlerErr() error {
	p := h.handler.Load().proc
	select {
	case <-p.exited:
		return p.waitErr
	default:
		return nil
	}
}

// KillHandler kills the custom handler process with SIGKILL, like an
// instance crash, then starts a new one the way Start does (new port, ready
// once it answers GET /), as the real host restarts a dead worker. Running
// invocations fail (queue messages take the normal retry path); so do those
// sent while it restarts, which still go to the dead process. The kill emits
// no EventHandlerExit; EventHandlerRestart follows when the new process is
// ready. ctx bounds the restart; if it fails, the dead process stays current.
func (h *Host) KillHandler(ctx context.Context) error {
	h.restartMu.Lock()
	defer h.restartMu.Unlock()
	if h.closed {
		return errors.New("funchost: KillHandler: host closed")
	}
	old := h.handler.Load()
	old.proc.closing.Store(true) // deliberate: no "exited unexpectedly"
	h.logf("funchost: killing the custom handler (pid %d, SIGKILL)", old.proc.cmd.Process.Pid)
	_ = old.proc.cmd.Process.Kill()
	<-old.proc.exited
	h.logf("funchost: restarting the custom handler (killed)")
	hc, err := h.startHandler(ctx)
	if err != nil {
		h.logf("funchost: ERROR restarting the custom handler: %v", err)
		return fmt.Errorf("funchost: restarting the custom handler: %w", err)
	}
	h.handler.Store(hc)
	old.client.CloseIdleConnections()
	h.emit(Event{Kind: EventHandlerRestart})
	return nil
}

// PauseQueues stops the queue listeners from dequeuing (messages pile up)
// until ResumeQueues; invocations already running finish normally. When it
// returns, no dequeue is in progress.
func (h *Host) PauseQueues() {
	h.queueMu.Lock()
	defer h.queueMu.Unlock()
	if h.paused == nil {
		h.paused = make(chan struct{})
		h.logf("funchost: queue listeners paused")
	}
}

// ResumeQueues undoes PauseQueues and wakes every listener at once.
func (h *Host) ResumeQueues() {
	h.queueMu.Lock()
	if h.paused != nil {
		close(h.paused)
		h.paused = nil
		h.logf("funchost: queue listeners resumed")
	}
	h.queueMu.Unlock()
	for _, l := range h.listeners {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (h *Host) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	select {
	case h.events <- ev:
	default:
	}
}

func (h *Host) lookup(name string) (*function, error) {
	f := h.byName[strings.ToLower(name)]
	if f == nil {
		return nil, fmt.Errorf("funchost: no function named %q", name)
	}
	return f, nil
}

// Close stops timers and listeners, waits (up to ShutdownTimeout) for
// running invocations, stops the HTTP server and the handler process.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.logf("funchost: stopping host")
		h.stopPoll()
		deadline := time.Now().Add(h.opts.ShutdownTimeout)
		if h.httpSrv != nil {
			sctx, cancel := context.WithDeadline(context.Background(), deadline)
			if err := h.httpSrv.Shutdown(sctx); err != nil {
				h.httpSrv.Close()
			}
			cancel()
		}
		for h.inflight.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := h.inflight.Load(); n > 0 {
			h.logf("funchost: cancelling %d running invocation(s)", n)
		}
		h.cancelInv()
		h.bg.Wait()
		h.restartMu.Lock()
		h.closed = true
		h.closeErr = h.handler.Load().proc.stop()
		h.restartMu.Unlock()
		h.logf("funchost: host stopped")
	})
	return h.closeErr
}

// WaitIdle waits until queue (a queue name; "" = every trigger queue) is
// empty and no invocation of a function it triggers is running (for "":
// no invocation at all), observed twice in a row.
func (h *Host) WaitIdle(ctx context.Context, queue string) error {
	type target struct {
		name, connStr string
	}
	var targets []target
	var fnNames []string
	queue = strings.ToLower(queue)
	for _, l := range h.listeners {
		if queue == "" || l.queue == queue {
			targets = append(targets, target{l.queue, l.fn.trigger.connStr})
			fnNames = append(fnNames, l.fn.Name)
		}
	}
	if queue != "" && len(targets) == 0 {
		cs, err := resolveConnection("", h.settings)
		if err != nil {
			return err
		}
		targets = append(targets, target{queue, cs})
	}
	// busy says what is not idle yet ("" when all is): it is the error when ctx ends first.
	busy := func() (string, error) {
		if queue == "" {
			if n := h.inflight.Load(); n > 0 {
				return fmt.Sprintf("%d invocations running", n), nil
			}
		} else {
			h.inflightMu.Lock()
			for _, n := range fnNames {
				if k := h.inflightBy[n]; k > 0 {
					h.inflightMu.Unlock()
					return fmt.Sprintf("%d invocations of %s running", k, n), nil
				}
			}
			h.inflightMu.Unlock()
		}
		for _, t := range targets {
			qc, err := h.storage.queue(t.connStr, t.name)
			if err != nil {
				return "", err
			}
			props, err := qc.GetProperties(ctx, nil)
			if err != nil {
				if isQueueNotFound(err) {
					continue
				}
				return "", err
			}
			if n := props.ApproximateMessagesCount; n != nil && *n > 0 {
				return fmt.Sprintf("%d messages in queue %s (visible or not)", *n, t.name), nil
			}
		}
		return "", nil
	}
	streak := 0
	for {
		what, err := busy()
		if err != nil {
			return err
		}
		if what == "" {
			streak++
			if streak >= 2 {
				return nil
			}
		} else {
			streak = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (h *Host) beginInvocation(fn string) {
	h.inflight.Add(1)
	h.inflightMu.Lock()
	h.inflightBy[fn]++
	h.inflightMu.Unlock()
}

func (h *Host) endInvocation(fn string) {
	h.inflightMu.Lock()
	h.inflightBy[fn]--
	h.inflightMu.Unlock()
	h.inflight.Add(-1)
}

// ---------------------------------------------------------------- handler

// handlerConn is one handler process and how to reach it.
type handlerConn struct {
	proc   *handlerProc
	url    string
	client *http.Client
}

type handlerProc struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	outWG   sync.WaitGroup
	mu      sync.Mutex
	tail    []string
	closing atomic.Bool
}

func (p *handlerProc) addTail(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > 40 {
		p.tail = p.tail[len(p.tail)-40:]
	}
}

func (p *handlerProc) lastOutput() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == 0 {
		return "(no output)"
	}
	return strings.Join(p.tail, "\n")
}

func (p *handlerProc) stop() error {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	p.closing.Store(true)
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(3 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	p.outWG.Wait()
	return nil
}

// startHandler starts a handler process and waits until it answers; on
// failure the process is stopped.
func (h *Host) startHandler(ctx context.Context) (*handlerConn, error) {
	path := h.opts.HandlerPath
	if path == "" {
		path = h.cfg.HandlerPath
		if path == "" {
			return nil, errors.New("host.json has no customHandler.description.defaultExecutablePath (and Options.HandlerPath is empty)")
		}
	}
	if h.opts.HandlerPath != "" {
		path, _ = filepath.Abs(path)
	} else if !filepath.IsAbs(path) {
		// Relative to the app root; a bare name not found there is looked up
		// in PATH (e.g. "node" with a defaultWorkerPath).
		joined := filepath.Join(h.appDir, path)
		if _, err := os.Stat(joined); err != nil && !strings.ContainsAny(path, `/\`) {
			if lp, lerr := exec.LookPath(path); lerr == nil {
				joined = lp
			}
		}
		path = joined
	}
	var args []string
	if h.cfg.WorkerPath != "" {
		args = append(args, h.cfg.WorkerPath)
	}
	args = append(args, h.cfg.Arguments...)
	exe := path
	if h.cfg.WorkerPath == "" {
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("custom handler executable: %w (build it first, e.g. go build -o %s)", err, path)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("custom handler %s is not an executable file", path)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cmd := exec.Command(exe, args...)
	cmd.Dir = h.appDir
	if wd := h.cfg.WorkingDirectory; wd != "" {
		if filepath.IsAbs(wd) {
			cmd.Dir = wd
		} else {
			cmd.Dir = filepath.Join(h.appDir, wd)
		}
	}
	env := make([]string, 0, len(h.settings)+1)
	for k, v := range h.settings {
		if k != "FUNCTIONS_CUSTOMHANDLER_PORT" {
			env = append(env, k+"="+v)
		}
	}
	sort.Strings(env)
	env = append(env, "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port))
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &handlerProc{cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting custom handler %s: %w", exe, err)
	}
	hc := &handlerConn{proc: p, url: "http://127.0.0.1:" + strconv.Itoa(port)}
	h.logf("funchost: started custom handler %s (pid %d, FUNCTIONS_CUSTOMHANDLER_PORT=%d)", exe, cmd.Process.Pid, port)
	pipe := func(r io.Reader) {
		defer p.outWG.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			line := sc.Text()
			p.addTail(line)
			h.logf("[handler] %s", line)
		}
		_, _ = io.Copy(io.Discard, r)
	}
	p.outWG.Add(2)
	go pipe(stdout)
	go pipe(stderr)
	go func() {
		p.outWG.Wait() // pipes must be drained before Wait
		p.waitErr = cmd.Wait()
		close(p.exited)
		if !p.closing.Load() {
			h.logf("funchost: ERROR custom handler process exited unexpectedly (%v); invocations will fail. Last output:\n%s", p.waitErr, p.lastOutput())
			h.emit(Event{Kind: EventHandlerExit, Err: fmt.Errorf("custom handler exited: %v", p.waitErr)})
		}
	}()

	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	hc.client = &http.Client{Transport: transport}

	// Wait until the handler answers anything on GET /.
	deadline := time.Now().Add(h.opts.StartupTimeout)
	probe := &http.Client{Transport: transport, Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hc.url+"/", nil)
		resp, err := probe.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			h.logf("funchost: custom handler is ready (GET / answered %d)", resp.StatusCode)
			return hc, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("custom handler %s exited during startup (%v). Last output:\n%s", exe, p.waitErr, p.lastOutput())
		case <-ctx.Done():
			err := fmt.Errorf("waiting for the custom handler: %w. Last output:\n%s", ctx.Err(), p.lastOutput())
			p.stop()
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("custom handler did not answer GET %s/ within %s (it must listen on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT). Last output:\n%s", hc.url, h.opts.StartupTimeout, p.lastOutput())
			p.stop()
			return nil, err
		}
	}
}

// ---------------------------------------------------------------- helpers

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// marshalJSON encodes like Newtonsoft.Json's defaults: no HTML escaping.
func marshalJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// doubleEncode is what the host does to every non-object binding value it
// sends to a custom handler: JsonConvert.SerializeObject(value), i.e. a
// string holding the value's JSON.
func doubleEncode(v any) string { return string(marshalJSON(v)) }

// netDate formats a DateTime/DateTimeOffset like Newtonsoft.Json
// ("2024-05-01T10:00:00.1234567+00:00"); the zero time is .NET's
// default(DateTime), "0001-01-01T00:00:00".
func netDate(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00"
	}
	return t.Format("2006-01-02T15:04:05.9999999-07:00")
}

// netUTCDate formats a UTC DateTime ("...Z").
func netUTCDate(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.9999999Z07:00")
}
