package funchost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (h *Host) startHTTP() error {
	addr := h.opts.HTTPAddr
	if addr == "" {
		addr = "127.0.0.1:7071"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("HTTP listener: %w", err)
	}
	h.httpURL = "http://" + ln.Addr().String()
	for _, f := range h.fns {
		if f.triggerType() == "httptrigger" {
			f.URL = h.httpURL + "/" + strings.TrimPrefix(h.cfg.RoutePrefix+"/"+f.Route, "/")
		}
	}
	h.httpSrv = &http.Server{Handler: http.HandlerFunc(h.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := h.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.logf("funchost: ERROR HTTP server: %v", err)
		}
	}()
	return nil
}

func (h *Host) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><body><h1>Your Functions 4.0 app is up and running</h1><p>funchost %s</p></body></html>\n", HostVersion)
		return
	case p == "/admin/host/status":
		writeJSON(w, http.StatusOK, map[string]any{"id": "funchost", "state": "Running", "version": HostVersion, "versionDetails": HostVersion + " (funchost)"})
		return
	case p == "/admin/functions" || p == "/admin/functions/":
		var list []map[string]any
		for _, f := range h.Functions() {
			list = append(list, map[string]any{"name": f.Name, "trigger": f.Trigger, "isDisabled": f.Disabled, "invoke_url_template": f.URL})
		}
		writeJSON(w, http.StatusOK, list)
		return
	case strings.HasPrefix(p, "/admin/functions/"):
		h.serveAdminInvoke(w, r, strings.TrimPrefix(p, "/admin/functions/"))
		return
	}
	h.serveTrigger(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(marshalJSON(v))
}

// serveAdminInvoke is Core Tools' "run a non-HTTP function now":
// POST /admin/functions/<name> {"input":"..."} → 202 Accepted.
func (h *Host) serveAdminInvoke(w http.ResponseWriter, r *http.Request, name string) {
	fn := h.byName[strings.ToLower(strings.Trim(name, "/"))]
	if fn == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, fn.FunctionInfo)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if fn.triggerType() == "httptrigger" {
		http.Error(w, "HTTP-triggered functions are invoked at "+fn.URL, http.StatusBadRequest)
		return
	}
	var body struct {
		Input json.RawMessage `json:"input"`
	}
	data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(strings.TrimSpace(string(data))) > 0 {
		if err := json.Unmarshal(data, &body); err != nil {
			http.Error(w, "body must be {\"input\":\"...\"}: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	input := ""
	if len(body.Input) > 0 {
		input = rawToString(body.Input)
	}
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		if _, err := h.runNow(h.invCtx, fn, input); err != nil {
			h.logf("funchost: admin invoke %s: %v", fn.Name, err)
		}
	}()
	w.WriteHeader(http.StatusAccepted)
}

// serveTrigger routes /<routePrefix>/<route> to an HTTP-triggered function.
func (h *Host) serveTrigger(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	if h.cfg.RoutePrefix != "" {
		prefix := h.cfg.RoutePrefix
		if !strings.EqualFold(rel, prefix) && !(len(rel) > len(prefix) && strings.EqualFold(rel[:len(prefix)+1], prefix+"/")) {
			http.NotFound(w, r)
			return
		}
		rel = strings.TrimPrefix(rel[len(prefix):], "/")
	}
	rel = strings.TrimSuffix(rel, "/")
	var cands []*function
	for _, f := range h.fns {
		if f.triggerType() == "httptrigger" && !f.Disabled {
			cands = append(cands, f)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		li, ni := cands[i].route.precedence()
		lj, nj := cands[j].route.precedence()
		if li != lj {
			return li > lj
		}
		return ni > nj
	})
	for _, f := range cands {
		params, ok := f.route.match(rel)
		if !ok {
			continue
		}
		if len(f.Methods) > 0 {
			allowed := false
			for _, m := range f.Methods {
				if strings.EqualFold(m, r.Method) {
					allowed = true
				}
			}
			if !allowed {
				continue
			}
		}
		h.invokeHTTP(w, r, f, params)
		return
	}
	http.NotFound(w, r)
}

func (h *Host) forwardable(fn *function) bool {
	if !h.cfg.EnableForwarding {
		return false
	}
	for _, o := range fn.outputs {
		if !strings.EqualFold(o.Type, "http") {
			return false
		}
	}
	return true
}

func (h *Host) invokeHTTP(w http.ResponseWriter, r *http.Request, fn *function, params map[string]string) {
	if h.pollCtx.Err() != nil {
		http.Error(w, "host is stopping", http.StatusServiceUnavailable)
		return
	}
	if h.forwardable(fn) {
		h.forwardHTTP(w, r, fn)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reqObj := map[string]any{
		"Url":        "http://" + r.Host + r.URL.RequestURI(),
		"Method":     r.Method,
		"Query":      queryObject(r.URL.Query()),
		"Headers":    headerObject(r),
		"Params":     params,
		"Identities": []any{},
	}
	if len(body) > 0 {
		if isOctetOrMultipart(r.Header.Get("Content-Type")) {
			reqObj["Body"] = base64.StdEncoding.EncodeToString(body) // byte[] → base64 in JSON
		} else {
			reqObj["Body"] = string(body)
		}
	}
	meta := map[string]any{
		"Query":   queryObject(r.URL.Query()),
		"Headers": flatHeaders(r),
	}
	for k, v := range params {
		meta[k] = doubleEncode(v)
	}
	data := map[string]any{fn.trigger.Name: reqObj}
	res := h.invoke(h.invCtx, fn, invocationInput{data: data, metadata: meta,
		reason: "This function was programmatically called via the host APIs.", httpTrigger: true})
	if !res.OK {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.writeHTTPOutput(w, fn, res)
}

func queryObject(q url.Values) map[string]string {
	out := map[string]string{}
	for k, v := range q {
		out[k] = strings.Join(v, ",")
	}
	return out
}

// headerObject is ASP.NET's header dictionary: name → [values], with Host
// and Content-Length, which Go keeps outside r.Header.
func headerObject(r *http.Request) map[string][]string {
	out := map[string][]string{}
	for k, v := range r.Header {
		out[k] = v
	}
	if r.Host != "" {
		out["Host"] = []string{r.Host}
	}
	if r.ContentLength > 0 {
		out["Content-Length"] = []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	return out
}

func flatHeaders(r *http.Request) map[string]string {
	out := map[string]string{}
	for k, v := range headerObject(r) {
		out[k] = strings.Join(v, ",")
	}
	return out
}

func isOctetOrMultipart(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/")
}

// writeHTTPOutput maps the http output binding value
// {"statusCode":..,"body":..,"headers":{..}} to the response.
func (h *Host) writeHTTPOutput(w http.ResponseWriter, fn *function, res *Result) {
	var raw json.RawMessage
	var name string
	for _, b := range fn.outputs {
		if strings.EqualFold(b.Type, "http") {
			name = b.Name
			raw, _ = outputValue(res, b)
		}
	}
	if len(raw) == 0 || string(raw) == "null" {
		h.logf("funchost: WARNING %s: the handler set no value for the http output %q; answering 204", fn.Name, name)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		h.logf("funchost: ERROR %s: http output %q is not an object {statusCode, body, headers}: %s", fn.Name, name, truncate(string(raw), 500))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	get := func(keys ...string) (json.RawMessage, bool) {
		for _, key := range keys {
			for k, v := range obj {
				if strings.EqualFold(k, key) {
					return v, true
				}
			}
		}
		return nil, false
	}
	status := http.StatusOK
	if v, ok := get("statusCode", "status"); ok && string(v) != "null" {
		s := rawToString(v)
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 100 || n > 999 {
			h.logf("funchost: ERROR %s: http output statusCode %s is not a valid status code", fn.Name, string(v))
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		status = n
	}
	var body []byte
	contentType := ""
	if v, ok := get("body"); ok && string(v) != "null" {
		var s string
		if json.Unmarshal(v, &s) == nil {
			body = []byte(s)
			contentType = "text/plain; charset=utf-8"
		} else {
			body = []byte(v)
			contentType = "application/json; charset=utf-8"
		}
	}
	if v, ok := get("headers"); ok && string(v) != "null" {
		var hdrs map[string]json.RawMessage
		if err := json.Unmarshal(v, &hdrs); err != nil {
			h.logf("funchost: ERROR %s: http output headers must be an object: %s", fn.Name, string(v))
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		for k, hv := range hdrs {
			var list []json.RawMessage
			if json.Unmarshal(hv, &list) == nil {
				for _, x := range list {
					w.Header().Add(k, rawToString(x))
				}
			} else {
				w.Header().Set(k, rawToString(hv))
			}
		}
	}
	if w.Header().Get("Content-Type") == "" && contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	w.Write(body)
}

// forwardHTTP implements enableForwardingHttpRequest: the original request
// goes to the handler at the same path.
func (h *Host) forwardHTTP(w http.ResponseWriter, r *http.Request, fn *function) {
	hc := h.handler.Load()
	target, _ := url.Parse(hc.url)
	id := newUUID()
	h.beginInvocation(fn.Name)
	defer h.endInvocation(fn.Name)
	start := time.Now()
	h.logf("Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s) [forwarded]", fn.Name, id)
	status := 0
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = r.Host
			pr.Out.Header.Set("X-Azure-Functions-InvocationId", id)
		},
		Transport: hc.client.Transport,
		ModifyResponse: func(resp *http.Response) error {
			status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.logf("funchost: ERROR %s: forwarding to the handler: %v", fn.Name, err)
			w.WriteHeader(http.StatusInternalServerError)
		},
	}
	ctx := r.Context()
	if h.cfg.FunctionTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.FunctionTimeout)
		defer cancel()
	}
	proxy.ServeHTTP(w, r.WithContext(ctx))
	d := time.Since(start)
	ok := status >= 200 && status < 500
	outcome := "Succeeded"
	if !ok {
		outcome = "Failed"
	}
	h.logf("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms) [forwarded, status %d]", fn.Name, outcome, id, d.Milliseconds(), status)
	res := &Result{Function: fn.Name, InvocationID: id, OK: ok, StatusCode: status, Duration: d}
	h.emit(Event{Kind: EventInvocation, Function: fn.Name, InvocationID: id, OK: ok, Duration: d, Result: res})
}
