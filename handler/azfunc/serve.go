package azfunc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/calstatus/calstatus/internal/logctx"
)

// Call is what a function sees of its invocation: a logger whose lines become the invocation's Logs
// (and so reach Application Insights), and a place to put output binding values.
type Call struct {
	InvocationID string
	Log          *slog.Logger

	mu      sync.Mutex
	lines   []string
	outputs map[string]any
}

// SetOutput sets the value of an output binding. For a queue binding, a slice becomes one message
// per element; always pass JSON objects (the host base64-decodes strings that look like base64).
func (c *Call) SetOutput(binding string, v any) error {
	if binding == "" {
		return ErrNoOutput
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outputs[binding] = v
	return nil
}

// Write receives one formatted log record from slog's JSON handler.
func (c *Call) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newCall(r *http.Request, level slog.Leveler) *Call {
	c := &Call{InvocationID: r.Header.Get("X-Azure-Functions-InvocationId"), outputs: map[string]any{}}
	// One JSON object a line: Application Insights keeps a line as a trace's message, where
	// parse_json(message) gives every field by name (see infra/queries).
	c.Log = slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{
		Level: level,
		// The host stamps every log line with its own time.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	return c
}

func (c *Call) response(returnValue any) Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	logs := append([]string(nil), c.lines...)
	if logs == nil {
		logs = []string{}
	}
	return Response{Outputs: c.outputs, Logs: logs, ReturnValue: returnValue}
}

// Server turns typed functions into the HTTP endpoints the host calls.
type Server struct {
	// LogLevel is the lowest level written to invocation logs (default Info).
	LogLevel slog.Leveler
	// Stderr receives the logs of failed invocations too, since the host may drop the Logs of a
	// non-2xx answer. Defaults to os.Stderr.
	Stderr io.Writer
}

func (s *Server) level() slog.Leveler {
	if s.LogLevel == nil {
		return slog.LevelInfo
	}
	return s.LogLevel
}

// serve runs one invocation: decode, call fn, answer. Input errors answer 400, other errors 500;
// either way the host counts the invocation failed (and retries a queue message).
func (s *Server) serve(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, c *Call, inv *Invocation) (any, error)) {
	c := newCall(r, s.level())
	inv, err := DecodeInvocation(r.Body)
	var ret any
	if err == nil {
		inv.InvocationID = c.InvocationID
		ret, err = fn(logctx.With(r.Context(), c.Log), c, inv)
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusInternalServerError
		var in *InputError
		if errors.As(err, &in) {
			status = http.StatusBadRequest
		}
		c.Log.Error("invocation failed", "error", err.Error())
		c.mu.Lock()
		c.outputs = map[string]any{} // outputs of a failed invocation must not be applied
		stderr := s.Stderr
		if stderr == nil {
			stderr = os.Stderr
		}
		for _, l := range c.lines {
			fmt.Fprintln(stderr, tagged(l, strings.TrimPrefix(r.URL.Path, "/"), c.InvocationID))
		}
		c.mu.Unlock()
	}
	writeJSON(w, status, c.response(ret))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Timer serves a timer-triggered function whose trigger binding is named binding.
func (s *Server) Timer(binding string, fn func(ctx context.Context, c *Call, t TimerInfo) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, func(ctx context.Context, c *Call, inv *Invocation) (any, error) {
			t, err := inv.Timer(binding)
			if err != nil {
				return nil, err
			}
			return nil, fn(ctx, c, t)
		})
	}
}

// Queue serves a queue-triggered function whose trigger binding is named binding.
func (s *Server) Queue(binding string, fn func(ctx context.Context, c *Call, m QueueMessage) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, func(ctx context.Context, c *Call, inv *Invocation) (any, error) {
			m, err := inv.QueueMessage(binding)
			if err != nil {
				return nil, err
			}
			return nil, fn(ctx, c, m)
		})
	}
}

// HTTP serves an HTTP-triggered function (request forwarding off): the request comes in Data[binding],
// the answer goes out under the output binding out ("$return" uses ReturnValue). Errors from fn are
// answered as a 500 page to the caller while the invocation itself succeeds.
func (s *Server) HTTP(binding, out string, fn func(ctx context.Context, c *Call, r HTTPRequest) (HTTPResponse, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, func(ctx context.Context, c *Call, inv *Invocation) (any, error) {
			req, err := inv.HTTPRequest(binding)
			if err != nil {
				return nil, err
			}
			resp, err := fn(ctx, c, req)
			if err != nil {
				c.Log.Error("request failed", "error", err.Error())
				resp = HTTPResponse{StatusCode: http.StatusInternalServerError, Body: "internal error\n",
					Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
			}
			if out == "$return" {
				return resp, nil
			}
			return nil, c.SetOutput(out, resp)
		})
	}
}

// tagged adds the function and invocation to a JSON log line, for stderr: the host drops a failed
// invocation's Logs but logs the handler's console output, where the line must still say whose it is
// (and still be one JSON object for the queries).
func tagged(line, function, invocation string) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal([]byte(line), &fields) != nil {
		return fmt.Sprintf("%s invocation=%s %s", function, invocation, line)
	}
	fn, _ := json.Marshal(function)
	id, _ := json.Marshal(invocation)
	fields["function"], fields["invocation"] = fn, id
	out, _ := json.Marshal(fields)
	return string(out)
}
