// Command echohandler is a tiny custom handler for funchost's tests. It
// echoes what the host sent (payload and headers) in ReturnValue and Logs,
// and its queue function obeys the message: {"fail":true} answers 500,
// {"emit":X} sets Outputs.out = X, {"sleepMs":N} sleeps first, and
// {"hang":"tag"} on its first delivery prints "hanging tag" and never answers.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

type response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// decodeString decodes a value the host may have JSON-encoded twice.
func decodeString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	var inner string
	if strings.HasPrefix(s, `"`) && json.Unmarshal([]byte(s), &inner) == nil {
		return inner
	}
	return s
}

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		log.Fatal("FUNCTIONS_CUSTOMHANDLER_PORT not set")
	}
	fmt.Println("echohandler starting; ECHO_MARKER=" + os.Getenv("ECHO_MARKER"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	// enableForwardingHttpRequest: the original request arrives as is.
	mux.HandleFunc("GET /GoodHttp", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "forwarded %s %s id=%s", r.Method, r.URL.RequestURI(), r.Header.Get("X-Azure-Functions-InvocationId"))
	})
	mux.HandleFunc("POST /{fn}", func(w http.ResponseWriter, r *http.Request) {
		fn := r.PathValue("fn")
		body, _ := io.ReadAll(r.Body)
		var payload struct {
			Data     map[string]json.RawMessage `json:"Data"`
			Metadata map[string]json.RawMessage `json:"Metadata"`
		}
		if err := json.Unmarshal(body, &payload); err != nil {
			http.Error(w, "bad payload: "+err.Error(), 400)
			return
		}
		echo := map[string]any{
			"payload": json.RawMessage(body),
			"headers": r.Header,
			"path":    r.URL.Path,
		}
		resp := response{Outputs: map[string]any{}, Logs: []string{"hello from " + fn}, ReturnValue: echo}
		writeJSON := func(status int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(resp)
		}
		switch fn {
		case "SlowTimer":
			time.Sleep(3 * time.Second)
		case "PlainTimer":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			json.NewEncoder(w).Encode(resp)
			return
		case "QueueFn":
			text := decodeString(payload.Data["msg"])
			dc := decodeString(payload.Metadata["DequeueCount"])
			resp.Logs = append(resp.Logs, "text="+text, "dequeueCount="+dc)
			var cmd struct {
				Fail    bool            `json:"fail"`
				Emit    json.RawMessage `json:"emit"`
				SleepMs int             `json:"sleepMs"`
				Hang    string          `json:"hang"`
			}
			_ = json.Unmarshal([]byte(text), &cmd)
			if text == "exit" {
				os.Exit(7)
			}
			if cmd.Hang != "" && dc == "1" {
				fmt.Println("hanging " + cmd.Hang)
				select {}
			}
			if cmd.SleepMs > 0 {
				time.Sleep(time.Duration(cmd.SleepMs) * time.Millisecond)
			}
			if len(cmd.Emit) > 0 {
				resp.Outputs["out"] = cmd.Emit
			}
			if cmd.Fail {
				resp.Logs = append(resp.Logs, "failing as asked")
				writeJSON(500)
				return
			}
		case "HttpFn", "HttpReturn", "GoodHttp":
			var req struct {
				Method string
				Query  map[string]string
				Params map[string]string
				Body   string
			}
			_ = json.Unmarshal(payload.Data["req"], &req)
			echoBody, _ := json.Marshal(map[string]any{"method": req.Method, "query": req.Query, "params": req.Params, "body": req.Body})
			out := map[string]any{
				"statusCode": "201",
				"body":       string(echoBody),
				"headers":    map[string]any{"Content-Type": "application/json", "X-Echo": "yes"},
			}
			if fn != "HttpReturn" {
				resp.Outputs["res"] = out
			} else {
				resp.ReturnValue = map[string]any{"statusCode": 200, "body": "plain " + req.Method}
			}
		}
		writeJSON(200)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}
