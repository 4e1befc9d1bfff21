package graphsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// filterQuery is a /users query string with filter and $select=id,userPrincipalName,mail.
func filterQuery(filter string) string {
	return "$filter=" + url.QueryEscape(filter) + "&$select=id,userPrincipalName,mail"
}

func directoryScenario() *Scenario {
	return &Scenario{
		Generator: Generator{Seed: 1, Domain: "contoso.example"},
		Mailboxes: map[string]*Mailbox{
			"ann@contoso.example":    {},
			"bo@contoso.example":     {UserPrincipalName: "bo.smith@contoso.onmicrosoft.example"},
			"cy@contoso.example":     {Missing: true},
			"di@contoso.example":     {Mail: "diana@contoso.example", ID: "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"},
			"o'neil@contoso.example": {Unlicensed: true},
		},
	}
}

type usersAnswer struct {
	Context string           `json:"@odata.context"`
	Value   []map[string]any `json:"value"`
}

func getUsers(t *testing.T, s *Server, tok, filter string) (httpResult, usersAnswer) {
	t.Helper()
	r := doJSON(t, s, "GET", "/v1.0/users?"+filterQuery(filter), tok, nil, nil)
	var a usersAnswer
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
	}
	return r, a
}

func TestUsersByUPNAndMail(t *testing.T) {
	s := startSim(t, Config{Scenario: directoryScenario(), Roles: []string{"User.Read.All"}})
	tok := fetchToken(t, s)
	r, a := getUsers(t, s, tok, "userPrincipalName in ('Ann@contoso.example','bo@contoso.example','di@contoso.example','gen.one@contoso.example','x@fabrikam.example','cy@contoso.example')"+
		" or mail in ('bo@contoso.example','diana@contoso.example','o''neil@contoso.example')")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if a.Context != "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName,mail)" {
		t.Fatalf("context %q", a.Context)
	}
	want := []map[string]any{
		{"id": ObjectID("ann@contoso.example"), "userPrincipalName": "ann@contoso.example", "mail": "ann@contoso.example"},
		{"id": ObjectID("bo@contoso.example"), "userPrincipalName": "bo.smith@contoso.onmicrosoft.example", "mail": "bo@contoso.example"},
		{"id": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", "userPrincipalName": "di@contoso.example", "mail": "diana@contoso.example"},
		{"id": ObjectID("gen.one@contoso.example"), "userPrincipalName": "gen.one@contoso.example", "mail": "gen.one@contoso.example"},
		{"id": ObjectID("o'neil@contoso.example"), "userPrincipalName": "o'neil@contoso.example", "mail": "o'neil@contoso.example"},
	}
	if !reflect.DeepEqual(a.Value, want) {
		t.Fatalf("got %s", r.body)
	}
	// By mail alone, bo is found at his mail and not at his UPN; di, the other way round.
	for filter, n := range map[string]int{
		"mail eq 'bo.smith@contoso.onmicrosoft.example'":                                           0,
		"userPrincipalName eq 'bo.smith@contoso.onmicrosoft.example'":                              1,
		"mail eq 'di@contoso.example'":                                                             0,
		"(mail eq 'diana@contoso.example') or (id in ('" + ObjectID("ann@contoso.example") + "'))": 2,
	} {
		if r, a := getUsers(t, s, tok, filter); r.status != 200 || len(a.Value) != n {
			t.Fatalf("%s: %d, %d users: %s", filter, r.status, len(a.Value), r.body)
		}
	}
	// Without $select: Graph's default properties.
	r = doJSON(t, s, "GET", "/v1.0/users?$filter="+url.QueryEscape("mail eq 'ann@contoso.example'"), tok, nil, nil)
	if v := r.json(t)["value"].([]any)[0].(map[string]any); v["displayName"] != "Ann" || v["id"] != ObjectID("ann@contoso.example") || len(v) != 11 {
		t.Fatalf("%s", r.body)
	}
	if st := s.Stats(); st.UserQueries != 6 || st.Requests["users"] != 6 || st.GetScheduleCalls != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUsersFilterLimitsAndErrors(t *testing.T) {
	s := startSim(t, Config{Scenario: directoryScenario(), Roles: []string{"User.Read.All"}})
	tok := fetchToken(t, s)
	quoted := func(n int, f string) string {
		var vs []string
		for i := range n {
			vs = append(vs, "'"+fmt.Sprintf(f, i)+"'")
		}
		return strings.Join(vs, ",")
	}
	if r, a := getUsers(t, s, tok, "userPrincipalName in ("+quoted(15, "u%d@contoso.example")+")"); r.status != 200 || len(a.Value) != 15 {
		t.Fatalf("15 values: %d %s", r.status, r.body)
	}
	check := func(name, query string, status int, code, says string) {
		t.Helper()
		r := doJSON(t, s, "GET", "/v1.0/users?"+query, tok, nil, nil)
		if r.status != status {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		e := r.json(t)["error"].(map[string]any)
		if e["code"] != code || !strings.Contains(e["message"].(string), says) {
			t.Fatalf("%s: %s", name, r.body)
		}
	}
	check("16 values", filterQuery("userPrincipalName in ("+quoted(8, "u%d@contoso.example")+") or mail in ("+quoted(8, "u%d@contoso.example")+")"),
		400, "Request_UnsupportedQuery", "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15.")
	check("16 eq", filterQuery(strings.Repeat("mail eq 'a@contoso.example' or ", 15)+"mail eq 'b@contoso.example'"),
		400, "Request_UnsupportedQuery", "operators: 16.")
	check("other property", filterQuery("displayName eq 'Ann'"), 400, "Request_UnsupportedQuery", "'displayName'")
	check("and", filterQuery("mail eq 'a@contoso.example' and mail eq 'b@contoso.example'"), 400, "Request_UnsupportedQuery", "'or' only")
	check("ge", filterQuery("mail ge 'a'"), 400, "Request_UnsupportedQuery", "operator 'ge'")
	check("unterminated", filterQuery("mail eq 'a@contoso.example"), 400, "BadRequest", "unterminated")
	check("unclosed in", filterQuery("mail in ('a@contoso.example'"), 400, "BadRequest", "',' or ')'")
	check("no filter", "$select=id", 400, "BadRequest", "$filter")
	check("bad select", "$filter="+url.QueryEscape("mail eq 'a@contoso.example'")+"&$select=id,manager", 400, "BadRequest", "'manager'")
	if r := doJSON(t, s, "POST", "/v1.0/users", tok, `{}`, nil); r.status != 405 {
		t.Fatalf("POST: %d", r.status)
	}

	// Calendar permission only: the directory refuses.
	s.SetRoles([]string{"Calendars.ReadBasic.All"})
	tok2 := fetchToken(t, s)
	r := doJSON(t, s, "GET", "/v1.0/users?"+filterQuery("mail eq 'ann@contoso.example'"), tok2, nil, nil)
	if e := r.json(t)["error"].(map[string]any); r.status != 403 || e["code"] != "Authorization_RequestDenied" || e["message"] != "Insufficient privileges to complete the operation." {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// Looked up in a $batch: 20 filters of 15 values, one call.
func TestUsersInBatch(t *testing.T) {
	s := startSim(t, Config{Scenario: directoryScenario(), Roles: []string{"User.Read.All"}})
	tok := fetchToken(t, s)
	var reqs []any
	for i := range 20 {
		var vs []string
		for j := range 15 {
			vs = append(vs, fmt.Sprintf("'u%03d@contoso.example'", i*15+j))
		}
		prop := "userPrincipalName"
		if i%2 == 1 {
			prop = "mail"
		}
		reqs = append(reqs, map[string]any{"id": fmt.Sprint(i), "method": "GET",
			"url": "/users?" + filterQuery(prop+" in ("+strings.Join(vs, ",")+")")})
	}
	r, br := postBatch(t, s, tok, map[string]any{"requests": reqs})
	if r.status != 200 || br.statuses()[200] != 20 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, sub := range br.Responses {
		var a usersAnswer
		if err := json.Unmarshal(sub.Body, &a); err != nil || len(a.Value) != 15 {
			t.Fatalf("%s: %s", sub.ID, sub.Body)
		}
	}
	if st := s.Stats(); st.UserQueries != 20 || st.Requests["$batch"] != 1 || st.SubRequests != 20 {
		t.Fatalf("stats %+v", st)
	}
}
