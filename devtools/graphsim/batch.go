package graphsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

type batchItemIn struct {
	ID        json.RawMessage `json:"id"`
	Method    string          `json:"method"`
	URL       string          `json:"url"`
	Headers   map[string]any  `json:"headers"`
	Body      json.RawMessage `json:"body"`
	DependsOn []string        `json:"dependsOn"`
}

type batchItemOut struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

type batchItem struct {
	req   *gReq
	rt    route
	deps  []int
	resp  *gResp
	done  chan struct{}
	early bool
}

// normalizeBatchURL turns a sub-request URL (relative to the version root, with or without a
// leading "/") into a decoded path and raw query.
func normalizeBatchURL(raw string) (string, string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", "", fmt.Errorf("the request URL is empty")
	}
	low := strings.ToLower(raw)
	if strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://") {
		return "", "", fmt.Errorf("Invalid request URL '%s': batch request URLs must be relative to the version root (e.g. /users/{id}/calendar/getSchedule)", raw)
	}
	rel := strings.TrimPrefix(raw, "/")
	lrel := strings.ToLower(rel)
	if strings.HasPrefix(lrel, "v1.0/") || strings.HasPrefix(lrel, "beta/") {
		return "", "", fmt.Errorf("Invalid request URL '%s': batch request URLs must not repeat the version segment", raw)
	}
	u, err := url.Parse("https://graph.invalid/" + rel)
	if err != nil {
		return "", "", fmt.Errorf("Invalid request URL '%s': %v", raw, err)
	}
	return u.Path, u.RawQuery, nil
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func (s *Server) batchError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	resp := s.errResp(status, code, msg, &gReq{header: r.Header})
	s.commit(nil, "", resp, false)
	if s.cfg.Verbose {
		s.cfg.Logf("graphsim: $batch -> %d %s: %s", status, code, msg)
	}
	s.writeGraph(w, r, resp)
}

func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		s.batchError(w, r, http.StatusMethodNotAllowed, "BadRequest", "Specified HTTP method is not allowed for the request target.")
		return
	}
	roles, authErr := s.authenticate(r)
	if authErr != nil {
		s.commit(nil, "", authErr, false)
		s.writeGraph(w, r, authErr)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONType(ct) {
		s.batchError(w, r, http.StatusUnsupportedMediaType, "BadRequest", "Content-Type of a $batch request must be application/json.")
		return
	}
	raw, err := readBody(r)
	if err != nil {
		st := http.StatusBadRequest
		if err == errUnsupportedEncoding {
			st = http.StatusUnsupportedMediaType
		}
		s.batchError(w, r, st, "BadRequest", err.Error())
		return
	}

	// Whole-batch faults and whole-batch Retry-After.
	early := s.arriveGlobal()
	bkey := requestKey("POST", "/$batch", "", raw)
	batchReq := &gReq{method: "POST", path: "/$batch", header: r.Header, key: bkey}
	s.mu.Lock()
	f := s.faults
	n := s.attempts[bkey]
	s.attempts[bkey] = n + 1
	s.batchSeq++
	batchID := fmt.Sprintf("b%d", s.batchSeq)
	s.mu.Unlock()
	var whole *gResp
	switch {
	case early && f.PunishEarlyRetries:
		whole = s.throttleResp(batchReq, f.throttleRetryAfter(), "early", "Too many requests.")
	case f.BatchThrottleFraction > 0 && draw(f.Seed, "batch-throttle", bkey, n) < f.BatchThrottleFraction:
		whole = s.throttleResp(batchReq, f.throttleRetryAfter(), "batch", fmt.Sprintf("Too many requests. Please retry after %d seconds.", f.throttleRetryAfter()))
	case f.BatchServerErrorFraction > 0 && draw(f.Seed, "batch-5xx", bkey, n) < f.BatchServerErrorFraction:
		sts := f.ServerErrorStatuses
		if len(sts) == 0 {
			sts = []int{500, 503, 504}
		}
		whole = s.serverErrorResp(batchReq, sts[int(draw(f.Seed, "batch-5xx-status", bkey, n)*float64(len(sts)))%len(sts)], "batch")
	}
	if whole != nil {
		if err := s.sleep(r.Context(), time.Duration(f.BatchLatency)); err != nil {
			return
		}
		s.commit(nil, "", whole, false)
		if whole.status == http.StatusTooManyRequests {
			s.mu.Lock()
			now := s.now()
			hold(&s.globalRetryUntil, &s.globalToldAt, now.Add(time.Duration(whole.retryAfter)*time.Second), now)
			s.mu.Unlock()
		}
		if s.cfg.Verbose {
			s.cfg.Logf("graphsim: $batch %s -> whole batch %d (%s)", batchID, whole.status, whole.reason)
		}
		s.writeGraph(w, r, whole)
		return
	}
	if f.BatchHangFraction > 0 && draw(f.Seed, "batch-hang", bkey, n) < f.BatchHangFraction {
		s.hang(w, r, "$batch "+batchID, start)
		return
	}

	var in struct {
		Requests []batchItemIn `json:"requests"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		s.batchError(w, r, http.StatusBadRequest, "BadRequest", "Invalid batch payload format: "+err.Error())
		return
	}
	if len(in.Requests) == 0 {
		s.batchError(w, r, http.StatusBadRequest, "BadRequest", "Invalid batch payload format: the batch contains no requests.")
		return
	}
	if len(in.Requests) > maxBatch {
		s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Number of batch requests (%d) exceeds the limit of %d.", len(in.Requests), maxBatch))
		return
	}
	sc := s.Scenario()
	items := make([]*batchItem, len(in.Requests))
	index := map[string]int{}
	for i, it := range in.Requests {
		var id string
		if err := json.Unmarshal(it.ID, &id); err != nil || id == "" {
			s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid batch payload format: request %d has no string 'id'.", i))
			return
		}
		if _, dup := index[id]; dup {
			s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Batch request contains duplicate request id '%s'.", id))
			return
		}
		index[id] = i
		if it.Method == "" {
			s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid batch payload format: request '%s' has no method.", id))
			return
		}
		hdr := http.Header{}
		for k, v := range it.Headers {
			sv, ok := v.(string)
			if !ok {
				s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid batch payload format: header '%s' of request '%s' is not a string.", k, id))
				return
			}
			hdr.Set(k, sv)
		}
		var body []byte
		if b := bytes.TrimSpace(it.Body); len(b) > 0 && !bytes.Equal(b, []byte("null")) {
			switch b[0] {
			case '{', '[':
				body = b
			case '"':
				var str string
				_ = json.Unmarshal(b, &str)
				if dec, err := base64.StdEncoding.DecodeString(str); err == nil && !isJSONType(hdr.Get("Content-Type")) {
					body = dec
				} else if dec, err := base64.StdEncoding.DecodeString(str); err == nil && json.Valid(dec) {
					body = dec
				} else {
					body = []byte(str)
				}
			default:
				s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid batch payload format: body of request '%s' must be an object or a base64 string.", id))
				return
			}
			if hdr.Get("Content-Type") == "" {
				s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Write request id : %s does not contain Content-Type header or body.", id))
				return
			}
		}
		req := &gReq{method: strings.ToUpper(it.Method), header: hdr, body: body, roles: roles, batchID: batchID, id: id}
		bi := &batchItem{req: req, done: make(chan struct{})}
		path, query, err := normalizeBatchURL(it.URL)
		if err != nil {
			req.path = it.URL
			bi.rt = route{errResp: s.errResp(http.StatusBadRequest, "BadRequest", err.Error(), req)}
		} else {
			req.path, req.query = path, query
			bi.rt = s.parseRoute(req, sc)
		}
		req.kind = bi.rt.kind
		req.key = requestKey(req.method, req.path, req.query, body)
		items[i] = bi
	}
	for i, it := range in.Requests {
		for _, d := range it.DependsOn {
			j, ok := index[d]
			if !ok || j == i {
				s.batchError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Request '%s' depends on unknown request '%s'.", items[i].req.id, d))
				return
			}
			items[i].deps = append(items[i].deps, j)
		}
	}
	if cyclic(items) {
		s.batchError(w, r, http.StatusBadRequest, "BadRequest", "The dependsOn references of the batch form a cycle.")
		return
	}
	// A sub-request that hangs holds its whole batch, as Graph's would; the slowest endpoint sets
	// the batch's extra latency.
	var extra time.Duration
	for _, bi := range items {
		if bi.rt.errResp != nil {
			continue
		}
		if s.drawHang(bi.req) {
			s.hang(w, r, "$batch "+batchID, start)
			return
		}
		extra = max(extra, time.Duration(f.EndpointLatency[bi.rt.kind]))
	}

	s.mu.Lock()
	s.st.subRequests += int64(len(items))
	s.mu.Unlock()

	// Phase 1: every sub-request arrives (early-retry accounting before this batch's own answers).
	for _, bi := range items {
		if bi.rt.errResp == nil {
			bi.early = s.arrive(bi.rt.scope(), bi.req.key, early) || early
		} else {
			bi.early = early
		}
	}
	// Phase 2: independent sub-requests are admitted in request order (they start together).
	admitted := make([]bool, len(items))
	for i, bi := range items {
		if len(bi.deps) > 0 {
			continue
		}
		if bi.rt.errResp != nil {
			bi.resp = bi.rt.errResp
			continue
		}
		if rej := s.admit(bi.req, bi.rt.scope(), bi.early); rej != nil {
			bi.resp = rej
		} else {
			admitted[i] = true
		}
	}
	// Phase 3: the batch takes its time while admitted sub-requests hold their slots.
	if err := s.sleep(r.Context(), time.Duration(f.BatchLatency)+extra); err != nil {
		for i, bi := range items {
			if admitted[i] {
				s.release(bi.rt.scope())
			}
			if bi.rt.errResp == nil {
				s.depart(bi.rt.scope())
			}
		}
		return
	}
	// Phase 4: execute concurrently; dependents wait for their dependencies.
	var wg sync.WaitGroup
	for i, bi := range items {
		wg.Add(1)
		go func(i int, bi *batchItem) {
			defer wg.Done()
			defer close(bi.done)
			if len(bi.deps) == 0 {
				if admitted[i] {
					bi.resp = s.execute(bi.req, bi.rt, sc)
					s.release(bi.rt.scope())
				}
				return
			}
			for _, j := range bi.deps {
				<-items[j].done
				if st := items[j].resp.status; st < 200 || st > 299 {
					bi.resp = s.errResp(http.StatusFailedDependency, "FailedDependency", fmt.Sprintf("Dependent request '%s' failed with status %d.", items[j].req.id, st), bi.req)
					return
				}
			}
			if bi.rt.errResp != nil {
				bi.resp = bi.rt.errResp
				return
			}
			if rej := s.admit(bi.req, bi.rt.scope(), bi.early); rej != nil {
				bi.resp = rej
				return
			}
			bi.resp = s.execute(bi.req, bi.rt, sc)
			s.release(bi.rt.scope())
		}(i, bi)
	}
	wg.Wait()

	// Phase 5: answer; Retry-After periods start now.
	out := make([]batchItemOut, len(items))
	counts := map[int]int{}
	for i, bi := range items {
		bi.resp.early = bi.early
		s.commit(bi.req, bi.rt.scope(), bi.resp, true)
		if bi.rt.errResp == nil {
			s.depart(bi.rt.scope())
		}
		s.observe(bi.req, bi.rt.mailbox, bi.resp)
		counts[bi.resp.status]++
		body, header := bi.resp.body, bi.resp.header
		if bi.resp.status >= 200 && bi.resp.status <= 299 {
			body, header = f.stringBody(bi.rt.mailbox, body, header)
		}
		out[i] = batchItemOut{ID: bi.req.id, Status: bi.resp.status, Headers: header, Body: body}
	}
	if f.ShuffleBatchResponses {
		keys := make([]float64, len(out))
		for i := range out {
			keys[i] = draw(f.Seed, "shuffle", bkey+"|"+out[i].ID, n)
		}
		idx := make([]int, len(out))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
		shuffled := make([]batchItemOut, len(out))
		for i, j := range idx {
			shuffled[i] = out[j]
		}
		out = shuffled
	}
	s.commit(nil, "", &gResp{status: http.StatusOK}, false)
	if s.cfg.Verbose {
		var parts []string
		for _, st := range sortedKeys(counts) {
			parts = append(parts, fmt.Sprintf("%d×%d", counts[st], st))
		}
		mbs := map[string]int{}
		for _, bi := range items {
			if bi.rt.mailbox != "" {
				mbs[bi.rt.mailbox]++
			}
		}
		var mparts []string
		for _, m := range sortedKeys(mbs) {
			mparts = append(mparts, fmt.Sprintf("%s×%d", m, mbs[m]))
		}
		s.cfg.Logf("graphsim: $batch %s: %d sub-requests [%s] -> %s (%s)", batchID, len(items), strings.Join(mparts, " "), strings.Join(parts, " "), time.Since(start).Round(time.Millisecond))
	}
	b, _ := json.Marshal(map[string]any{"responses": out})
	s.writeGraph(w, r, &gResp{status: http.StatusOK, header: map[string]string{"Content-Type": odataJSON, "Cache-Control": "private"}, body: b})
}

// hangLimit bounds how long a hung request is held, so that a client without a deadline does not
// hold the simulator forever.
const hangLimit = 10 * time.Minute

// hang holds an accepted request ($batch or direct, what names it) unanswered until the client
// gives up or the server closes; only after hangLimit does it answer (504).
func (s *Server) hang(w http.ResponseWriter, r *http.Request, what string, start time.Time) {
	s.mu.Lock()
	s.st.hung++
	s.mu.Unlock()
	t := time.NewTimer(hangLimit)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-s.closing.Done():
	case <-t.C:
		resp := s.errResp(http.StatusGatewayTimeout, "GatewayTimeout", "The request was not answered in time.", &gReq{header: r.Header})
		s.commit(nil, "", resp, false)
		s.writeGraph(w, r, resp)
	}
	if s.cfg.Verbose {
		s.cfg.Logf("graphsim: %s -> hung, given up after %s", what, time.Since(start).Round(time.Millisecond))
	}
}

func cyclic(items []*batchItem) bool {
	state := make([]int, len(items)) // 0 new, 1 visiting, 2 done
	var visit func(i int) bool
	visit = func(i int) bool {
		switch state[i] {
		case 1:
			return true
		case 2:
			return false
		}
		state[i] = 1
		for _, j := range items[i].deps {
			if visit(j) {
				return true
			}
		}
		state[i] = 2
		return false
	}
	for i := range items {
		if visit(i) {
			return true
		}
	}
	return false
}
