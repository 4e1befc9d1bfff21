package graphsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// serveAdmin serves the control endpoints for out-of-process use (no authentication; the
// simulator listens on loopback only):
//
//	GET  /_sim/health                     -> {"ok":true,...}
//	GET  /_sim/stats                      -> Stats
//	POST /_sim/stats/reset (or DELETE /_sim/stats)
//	GET  /_sim/faults                     -> Faults
//	PUT  /_sim/faults   Faults JSON       (replace)
//	PATCH /_sim/faults  partial JSON      (merge into the current faults)
//	PUT  /_sim/scenario Scenario JSON
//	POST /_sim/throttling/reset
//	GET  /_sim/status?email=a@b&at=RFC3339 -> {"email","at","status"}
//	GET  /_sim/events?email=a@b&from=..&to=.. -> [Event]
//	GET  /_sim/presence?email=a@b&at=RFC3339 (or id=<object id>) -> Presence (404: no such user)
//	GET  /_sim/roles                      -> ["Calendars.ReadBasic.All", ...]
//	PUT  /_sim/roles    ["...", ...]      (the roles of the tokens issued from now on)
//	GET  /_sim/ca.pem
//
// A scenario's presence and automatic replies are set with it (PUT /_sim/scenario), as its
// calendars are.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(strings.ToLower(r.URL.Path), "/")
	bad := func(status int, msg string) {
		writeJSON(w, status, "", map[string]any{"error": msg})
	}
	switch {
	case p == "/_sim/health":
		writeJSON(w, http.StatusOK, "", map[string]any{"ok": true, "url": s.url, "graphUrl": s.GraphURL(), "tenantId": s.cfg.TenantID, "clientId": s.cfg.ClientID})
	case p == "/_sim/stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, "", s.Stats())
	case (p == "/_sim/stats" && r.Method == http.MethodDelete) || (p == "/_sim/stats/reset" && r.Method == http.MethodPost):
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	case p == "/_sim/throttling/reset" && r.Method == http.MethodPost:
		s.ResetThrottling()
		w.WriteHeader(http.StatusNoContent)
	case p == "/_sim/faults" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, "", s.Faults())
	case p == "/_sim/faults" && (r.Method == http.MethodPut || r.Method == http.MethodPatch):
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			bad(http.StatusBadRequest, err.Error())
			return
		}
		var f Faults
		if r.Method == http.MethodPatch {
			f = s.Faults()
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			bad(http.StatusBadRequest, "faults: "+err.Error())
			return
		}
		if err := s.SetFaults(f); err != nil {
			bad(http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, "", s.Faults())
	case p == "/_sim/scenario" && r.Method == http.MethodPut:
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			bad(http.StatusBadRequest, err.Error())
			return
		}
		sc, err := ParseScenario(b)
		if err != nil {
			bad(http.StatusBadRequest, err.Error())
			return
		}
		_ = s.SetScenario(sc)
		w.WriteHeader(http.StatusNoContent)
	case p == "/_sim/status" && r.Method == http.MethodGet:
		email := r.URL.Query().Get("email")
		at := s.now()
		if v := r.URL.Query().Get("at"); v != "" {
			t, err := parseLooseTime(v)
			if err != nil {
				bad(http.StatusBadRequest, err.Error())
				return
			}
			at = t
		}
		writeJSON(w, http.StatusOK, "", map[string]any{"email": email, "at": at, "status": s.Scenario().StatusAt(email, at)})
	case p == "/_sim/events" && r.Method == http.MethodGet:
		q := r.URL.Query()
		from, to := s.now().Truncate(24*time.Hour), s.now().Truncate(24*time.Hour).Add(24*time.Hour)
		var err error
		if v := q.Get("from"); v != "" {
			if from, err = parseLooseTime(v); err != nil {
				bad(http.StatusBadRequest, err.Error())
				return
			}
		}
		if v := q.Get("to"); v != "" {
			if to, err = parseLooseTime(v); err != nil {
				bad(http.StatusBadRequest, err.Error())
				return
			}
		}
		ev := s.Scenario().EventsFor(q.Get("email"), from, to)
		if ev == nil {
			ev = []Event{}
		}
		writeJSON(w, http.StatusOK, "", ev)
	case p == "/_sim/presence" && r.Method == http.MethodGet:
		q := r.URL.Query()
		at := s.now()
		if v := q.Get("at"); v != "" {
			t, err := parseLooseTime(v)
			if err != nil {
				bad(http.StatusBadRequest, err.Error())
				return
			}
			at = t
		}
		sc := s.Scenario()
		var u dirUser
		var ok bool
		if id := q.Get("id"); id != "" {
			u, ok = s.userByID(sc, id)
		} else {
			u, ok = sc.userAt(q.Get("email"))
		}
		if !ok {
			bad(http.StatusNotFound, "no such user")
			return
		}
		writeJSON(w, http.StatusOK, "", sc.presenceOf(u, at))
	case p == "/_sim/roles" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, "", s.Roles())
	case p == "/_sim/roles" && r.Method == http.MethodPut:
		var roles []string
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&roles); err != nil {
			bad(http.StatusBadRequest, "roles: "+err.Error())
			return
		}
		s.SetRoles(roles)
		writeJSON(w, http.StatusOK, "", s.Roles())
	case p == "/_sim/ca.pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.certs.caPEM)
	default:
		bad(http.StatusNotFound, "unknown simulator endpoint")
	}
}
