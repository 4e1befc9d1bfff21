package graphsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// maxFilterValues is how many values Graph takes in one $filter of /users: "the request is limited
// to 15 expressions in the filter clause" (known issues), counted over every in (…) and eq joined
// by or.
const maxFilterValues = 15

// dirUser is a user of the simulated directory (lower-cased).
type dirUser struct {
	id, upn, mail string
	email         string        // the address the scenario knows the user's mailbox by
	entry         *mailboxEntry // nil for a generated user
}

func (e *mailboxEntry) user() dirUser {
	return dirUser{id: e.id, upn: e.upn, mail: e.mail, email: e.email, entry: e}
}

// generatedUser is the user the generator has at addr: UPN and mail addr, id ObjectID(addr). An
// address a listed mailbox uses (as its key, UPN or mail) is never a generated user's.
func (s *Scenario) generatedUser(addr string) (dirUser, bool) {
	s.buildIndex()
	addr = strings.ToLower(strings.TrimSpace(addr))
	if s.taken[addr] {
		return dirUser{}, false
	}
	r := s.resolve(addr)
	if r.missing || !r.generated || r.mb != nil {
		return dirUser{}, false
	}
	return dirUser{id: ObjectID(addr), upn: addr, mail: addr, email: addr}, true
}

func (s *Scenario) userByUPN(upn string) (dirUser, bool) {
	s.buildIndex()
	if e := s.byUPN[strings.ToLower(strings.TrimSpace(upn))]; e != nil {
		return e.user(), true
	}
	return s.generatedUser(upn)
}

func (s *Scenario) userByMail(mail string) (dirUser, bool) {
	s.buildIndex()
	if e := s.byMail[strings.ToLower(strings.TrimSpace(mail))]; e != nil {
		return e.user(), true
	}
	return s.generatedUser(mail)
}

// userAt finds the user at a mailbox address, UPN or mail, or by a listed user's object id.
func (s *Scenario) userAt(key string) (dirUser, bool) {
	s.buildIndex()
	k := strings.ToLower(strings.TrimSpace(key))
	if e := s.index[k]; e != nil && !e.mb.Missing {
		return e.user(), true
	}
	if u, ok := s.userByUPN(k); ok {
		return u, true
	}
	return s.userByMail(k)
}

// userRoles are the application permissions GET /users (a list with $filter) accepts: Microsoft's
// "List users" page lists User.Read.All and up for applications; User.ReadBasic.All is delegated
// only there (app-only it is answered 403, as here).
var userRoles = []string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}

// userFields are the properties a user has here: Graph's default set. $select may name any of them.
var userFields = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
	"officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}

// listUsers serves GET /users?$filter=…[&$select=…]: the users whose userPrincipalName, mail or id
// is among the filter's values. The filter is made of `prop in ('a','b',…)` and `prop eq 'a'`
// clauses joined by `or`, at most 15 values in all; it is required (the simulator does not list
// a whole directory).
func (s *Server) listUsers(req *gReq, sc *Scenario) *gResp {
	s.mu.Lock()
	s.st.userQueries++
	s.mu.Unlock()
	if !hasRole(req.roles, userRoles...) {
		return s.errResp(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", req)
	}
	q, err := url.ParseQuery(req.query)
	if err != nil {
		return s.errResp(http.StatusBadRequest, "BadRequest", "Invalid query string: "+err.Error(), req)
	}
	filter := queryParam(q, "$filter")
	if strings.TrimSpace(filter) == "" {
		return s.errResp(http.StatusBadRequest, "BadRequest", "graphsim serves GET /users only with a $filter on userPrincipalName, mail or id.", req)
	}
	clauses, n, ferr := parseUserFilter(filter)
	if ferr != nil {
		return s.errResp(http.StatusBadRequest, ferr.code, ferr.msg, req)
	}
	if n > maxFilterValues {
		return s.errResp(http.StatusBadRequest, "Request_UnsupportedQuery",
			fmt.Sprintf("Too many child clauses specified in search filter expression containing 'OR' operators: %d. Max allowed: %d.", n, maxFilterValues), req)
	}
	fields := userFields
	context := "https://graph.microsoft.com/v1.0/$metadata#users"
	if sel := queryParam(q, "$select"); sel != "" {
		fields = nil
		for _, f := range strings.Split(sel, ",") {
			name := spelled(userFields, f)
			if name == "" {
				return s.errResp(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.user'.", strings.TrimSpace(f)), req)
			}
			fields = append(fields, name)
		}
		context += "(" + strings.Join(fields, ",") + ")"
	}

	found := map[string]dirUser{}
	var generated []string
	for _, c := range clauses {
		for _, v := range c.values {
			var u dirUser
			var ok bool
			switch c.prop {
			case "userPrincipalName":
				u, ok = sc.userByUPN(v)
			case "mail":
				u, ok = sc.userByMail(v)
			case "id":
				u, ok = s.userByID(sc, v)
			}
			if ok {
				found[u.id] = u
				if u.entry == nil {
					generated = append(generated, u.email)
				}
			}
		}
	}
	s.rememberGenerated(sc, generated...)
	users := make([]dirUser, 0, len(found))
	for _, u := range found {
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool { return users[i].upn < users[j].upn })
	values := make([]any, 0, len(users))
	for _, u := range users {
		values = append(values, u.json(fields))
	}
	out, _ := json.Marshal(orderedContext{Context: context, Value: values})
	return &gResp{status: http.StatusOK, header: map[string]string{"Content-Type": odataJSON, "Cache-Control": "private"}, body: out}
}

// json is the user as Graph answers it, with the given properties.
func (u dirUser) json(fields []string) map[string]any {
	local, _, _ := strings.Cut(u.upn, "@")
	var names []string
	for _, w := range strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' }) {
		names = append(names, strings.ToUpper(w[:1])+w[1:])
	}
	all := map[string]any{
		"businessPhones": []string{}, "displayName": strings.Join(names, " "), "givenName": nil, "jobTitle": nil,
		"mail": u.mail, "mobilePhone": nil, "officeLocation": nil, "preferredLanguage": nil, "surname": nil,
		"userPrincipalName": u.upn, "id": u.id,
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		out[f] = all[f]
	}
	return out
}

// queryParam reads an OData query option, whose name is case-insensitive.
func queryParam(q url.Values, name string) string {
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// filterClause is one `prop in (…)` or `prop eq …` of a /users filter.
type filterClause struct {
	prop   string // userPrincipalName, mail or id
	values []string
}

type filterError struct{ code, msg string }

func invalidFilter(format string, args ...any) *filterError {
	return &filterError{"BadRequest", "Invalid filter clause: " + fmt.Sprintf(format, args...)}
}

func unsupportedFilter(format string, args ...any) *filterError {
	return &filterError{"Request_UnsupportedQuery", fmt.Sprintf(format, args...)}
}

// filterProps are the properties a /users filter may test here.
var filterProps = []string{"userPrincipalName", "mail", "id"}

// parseUserFilter reads `clause or clause …` (clauses possibly in parentheses), and counts the
// values in all.
func parseUserFilter(filter string) ([]filterClause, int, *filterError) {
	toks, err := lexFilter(filter)
	if err != nil {
		return nil, 0, err
	}
	p := &filterParser{toks: toks}
	clauses, err := p.expr()
	if err != nil {
		return nil, 0, err
	}
	if t, ok := p.peek(); ok {
		if t.kind == 'w' && strings.EqualFold(t.text, "and") {
			return nil, 0, unsupportedFilter("Unsupported query: graphsim joins filter clauses with 'or' only.")
		}
		return nil, 0, invalidFilter("unexpected '%s'", t.text)
	}
	n := 0
	for _, c := range clauses {
		n += len(c.values)
	}
	return clauses, n, nil
}

type filterToken struct {
	kind byte // 'w' word, 's' string literal, or the punctuation itself: ( ) ,
	text string
}

func lexFilter(f string) ([]filterToken, *filterError) {
	var toks []filterToken
	for i := 0; i < len(f); {
		c := f[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, filterToken{kind: c, text: string(c)})
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(f) {
					return nil, invalidFilter("unterminated string literal")
				}
				if f[i] == '\'' {
					if i+1 < len(f) && f[i+1] == '\'' { // '' is a quote
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(f[i])
				i++
			}
			toks = append(toks, filterToken{kind: 's', text: b.String()})
		default:
			j := i
			for j < len(f) && !strings.ContainsRune(" \t(),'", rune(f[j])) {
				j++
			}
			toks = append(toks, filterToken{kind: 'w', text: f[i:j]})
			i = j
		}
	}
	return toks, nil
}

type filterParser struct {
	toks []filterToken
	pos  int
}

func (p *filterParser) peek() (filterToken, bool) {
	if p.pos >= len(p.toks) {
		return filterToken{}, false
	}
	return p.toks[p.pos], true
}

func (p *filterParser) next(want byte, what string) (filterToken, *filterError) {
	t, ok := p.peek()
	if !ok {
		return t, invalidFilter("expected %s at the end", what)
	}
	if t.kind != want {
		return t, invalidFilter("expected %s, found '%s'", what, t.text)
	}
	p.pos++
	return t, nil
}

func (p *filterParser) expr() ([]filterClause, *filterError) {
	var out []filterClause
	for {
		cs, err := p.term()
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if t, ok := p.peek(); !ok || t.kind != 'w' || !strings.EqualFold(t.text, "or") {
			return out, nil
		}
		p.pos++
	}
}

func (p *filterParser) term() ([]filterClause, *filterError) {
	if t, ok := p.peek(); ok && t.kind == '(' {
		p.pos++
		cs, err := p.expr()
		if err != nil {
			return nil, err
		}
		if _, err := p.next(')', "')'"); err != nil {
			return nil, err
		}
		return cs, nil
	}
	propTok, err := p.next('w', "a property")
	if err != nil {
		return nil, err
	}
	prop := spelled(filterProps, propTok.text)
	if prop == "" {
		return nil, unsupportedFilter("Unsupported or invalid query filter clause specified for property '%s' of resource 'User'.", propTok.text)
	}
	op, err := p.next('w', "an operator")
	if err != nil {
		return nil, err
	}
	c := filterClause{prop: prop}
	switch strings.ToLower(op.text) {
	case "eq":
		v, err := p.next('s', "a string")
		if err != nil {
			return nil, err
		}
		c.values = []string{v.text}
	case "in":
		if _, err := p.next('(', "'('"); err != nil {
			return nil, err
		}
		for {
			v, err := p.next('s', "a string")
			if err != nil {
				return nil, err
			}
			c.values = append(c.values, v.text)
			sep, ok := p.peek()
			if ok && sep.kind == ',' {
				p.pos++
				continue
			}
			if _, err := p.next(')', "',' or ')'"); err != nil {
				return nil, err
			}
			break
		}
	default:
		return nil, unsupportedFilter("Unsupported or invalid query filter clause specified for property '%s' of resource 'User': operator '%s'.", prop, op.text)
	}
	if slices.Contains(c.values, "") {
		return nil, invalidFilter("an empty value for '%s'", prop)
	}
	return []filterClause{c}, nil
}
