package graphsim

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// maxPresenceIDs is getPresencesByUserId's documented limit of ids in one request.
const maxPresenceIDs = 650

// Teams availability and activity values as Graph spells them (the "manage presence state" table
// and the presence resource's lists).
var (
	availabilities = []string{"Available", "AvailableIdle", "Away", "BeRightBack", "Busy", "BusyIdle",
		"DoNotDisturb", "Offline", "PresenceUnknown"}
	activities = []string{"Available", "Away", "BeRightBack", "Busy", "DoNotDisturb", "InACall",
		"InAConferenceCall", "Inactive", "InAMeeting", "Offline", "OffWork", "OutOfOffice",
		"PresenceUnknown", "Presenting", "UrgentInterruptionsOnly", "Focusing"}
)

// spelled returns v as list spells it (case-insensitively), or "" when it is not in it.
func spelled(list []string, v string) string {
	for _, w := range list {
		if strings.EqualFold(w, strings.TrimSpace(v)) {
			return w
		}
	}
	return ""
}

// availabilityOf is the availability Teams shows with an activity when a scenario gives none.
func availabilityOf(activity string) string {
	switch activity {
	case "InACall", "InAConferenceCall", "InAMeeting", "Busy":
		return "Busy"
	case "Presenting", "DoNotDisturb", "UrgentInterruptionsOnly", "Focusing":
		return "DoNotDisturb"
	case "Away", "BeRightBack", "Offline", "PresenceUnknown":
		return activity
	case "OffWork":
		return "Offline"
	}
	return "Available"
}

// PresenceWindow is a time Teams shows a user in a state the calendar does not give: a call
// (Busy/InACall, Busy/InAConferenceCall), a presentation (DoNotDisturb/Presenting)… Times are UTC.
type PresenceWindow struct {
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Availability string    `json:"availability,omitempty"` // default: what Teams shows with Activity
	Activity     string    `json:"activity"`
}

// UnmarshalJSON accepts the times and spellings Event does.
func (p *PresenceWindow) UnmarshalJSON(b []byte) error {
	var raw struct {
		Start, End, Availability, Activity string
	}
	if err := strictJSON(b, &raw); err != nil {
		return err
	}
	start, end, err := window(raw.Start, raw.End)
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	*p = PresenceWindow{Start: start, End: end, Availability: raw.Availability, Activity: raw.Activity}
	return p.validate()
}

func (p PresenceWindow) validate() error {
	if strings.TrimSpace(p.Activity) == "" {
		return fmt.Errorf("presence from %s: no activity", p.Start.Format(time.RFC3339))
	}
	if p.Availability != "" && spelled(availabilities, p.Availability) == "" {
		return fmt.Errorf("presence availability %q is not one of %s", p.Availability, strings.Join(availabilities, ", "))
	}
	if !p.End.After(p.Start) {
		return fmt.Errorf("presence %s ends before it starts", p.Activity)
	}
	return nil
}

// states are the availability and activity as Graph answers them: known values in Graph's
// spelling, an unknown activity as written (Graph adds values now and then).
func (p PresenceWindow) states() (availability, activity string) {
	activity = cmp.Or(spelled(activities, p.Activity), strings.TrimSpace(p.Activity))
	availability = spelled(availabilities, p.Availability)
	if availability == "" {
		availability = availabilityOf(activity)
	}
	return availability, activity
}

// AutomaticReplies is a time the user's Outlook automatic replies are on, with the reply they
// wrote (HTML, as Outlook stores it). Times are UTC.
type AutomaticReplies struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Message string    `json:"message"`
}

// UnmarshalJSON accepts the times Event does.
func (a *AutomaticReplies) UnmarshalJSON(b []byte) error {
	var raw struct{ Start, End, Message string }
	if err := strictJSON(b, &raw); err != nil {
		return err
	}
	start, end, err := window(raw.Start, raw.End)
	if err != nil {
		return fmt.Errorf("automatic replies: %w", err)
	}
	*a = AutomaticReplies{Start: start, End: end, Message: raw.Message}
	return nil
}

// strictJSON decodes b into v refusing unknown fields, as ParseScenario does above a custom
// UnmarshalJSON (which its decoder's setting does not reach).
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func window(rawStart, rawEnd string) (time.Time, time.Time, error) {
	start, err := parseLooseTime(rawStart)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("start: %w", err)
	}
	end, err := parseLooseTime(rawEnd)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("end: %w", err)
	}
	if !end.After(start) {
		return time.Time{}, time.Time{}, fmt.Errorf("ends (%s) before it starts (%s)", rawEnd, rawStart)
	}
	return start, end, nil
}

func (mb *Mailbox) validatePresence() error {
	for _, p := range mb.Presence {
		if err := p.validate(); err != nil {
			return err
		}
	}
	for _, a := range mb.AutomaticReplies {
		if !a.End.After(a.Start) {
			return fmt.Errorf("automatic replies from %s end before they start", a.Start.Format(time.RFC3339))
		}
	}
	return nil
}

// ObjectID is the Entra object id the simulator gives the user at email, unless the scenario
// sets one (Mailbox.ID): a GUID derived from the lower-cased address, the same in every run.
func ObjectID(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return formatGUID(h[:16])
}

// formatGUID formats 16 bytes as a version 4 GUID, the kind Entra gives.
func formatGUID(b []byte) string {
	b = slices.Clone(b[:16])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var guidShape = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Presence is one user's presence as getPresencesByUserId answers it.
type Presence struct {
	ID                  string              `json:"id"`
	Availability        string              `json:"availability"`
	Activity            string              `json:"activity"`
	OutOfOfficeSettings OutOfOfficeSettings `json:"outOfOfficeSettings"`
}

// OutOfOfficeSettings tells whether the user is out of office: automatic replies on (Message is
// their text) or an out-of-office event on the calendar (Message null), as Graph documents.
type OutOfOfficeSettings struct {
	IsOutOfOffice bool    `json:"isOutOfOffice"`
	Message       *string `json:"message"`
}

// presenceOf is the presence of the directory user u at t. Precedence: the latest-started
// presence window; else a busy calendar event (Busy/InAMeeting, which Teams takes from the
// calendar); else out of office (Available/OutOfOffice); else Available/Available.
func (s *Scenario) presenceOf(u dirUser, t time.Time) Presence {
	p := Presence{ID: u.id, Availability: "Available", Activity: "Available"}
	var mb *Mailbox
	if u.entry != nil {
		mb = u.entry.mb
	}
	if mb != nil && mb.NoTeams {
		p.Availability, p.Activity = "PresenceUnknown", "PresenceUnknown"
		return p
	}
	t = t.UTC()
	meeting, oofEvent := false, false
	for _, e := range s.eventsOf(s.resolve(u.email), t, t.Add(time.Nanosecond)) {
		meeting = meeting || e.Status == StatusBusy
		oofEvent = oofEvent || e.Status == StatusOOF
	}
	var win *PresenceWindow
	var replies *AutomaticReplies
	if mb != nil {
		for i, w := range mb.Presence {
			if !t.Before(w.Start) && t.Before(w.End) && (win == nil || w.Start.After(win.Start)) {
				win = &mb.Presence[i]
			}
		}
		for i, a := range mb.AutomaticReplies {
			if !t.Before(a.Start) && t.Before(a.End) && (replies == nil || a.Start.After(replies.Start)) {
				replies = &mb.AutomaticReplies[i]
			}
		}
	}
	switch {
	case replies != nil:
		msg := replies.Message
		p.OutOfOfficeSettings = OutOfOfficeSettings{IsOutOfOffice: true, Message: &msg}
	case oofEvent:
		p.OutOfOfficeSettings.IsOutOfOffice = true
	}
	switch {
	case win != nil:
		p.Availability, p.Activity = win.states()
	case meeting:
		p.Availability, p.Activity = "Busy", "InAMeeting"
	case p.OutOfOfficeSettings.IsOutOfOffice:
		p.Activity = "OutOfOffice"
	}
	return p
}

// PresenceAt is the presence getPresencesByUserId would answer at t for the user at an address
// (key, UPN or mail) or a listed user's object id; false when there is no such user.
func (s *Scenario) PresenceAt(emailOrID string, t time.Time) (Presence, bool) {
	u, ok := s.userAt(emailOrID)
	if !ok {
		return Presence{}, false
	}
	return s.presenceOf(u, t), true
}

// UserID is the object id of the user at an address (key, UPN or mail); false when the scenario
// has no user there.
func (s *Scenario) UserID(email string) (string, bool) {
	u, ok := s.userAt(email)
	return u.id, ok
}

// rememberGenerated notes the object ids of the generated users among addrs, so that presence can
// be asked for them by id.
func (s *Server) rememberGenerated(sc *Scenario, addrs ...string) {
	var ids map[string]string
	for _, a := range addrs {
		if u, ok := sc.userAt(a); ok && u.entry == nil {
			if ids == nil {
				ids = map[string]string{}
			}
			ids[u.id] = u.email
		}
	}
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, email := range ids {
		s.seenIDs[id] = email
	}
}

// userByID finds the user with object id id: a listed one, or a generated one met before.
func (s *Server) userByID(sc *Scenario, id string) (dirUser, bool) {
	id = strings.ToLower(strings.TrimSpace(id))
	if e := sc.lookup(id); e != nil {
		if e.mb.Missing || e.id != id {
			return dirUser{}, false
		}
		return e.user(), true
	}
	s.mu.Lock()
	email, ok := s.seenIDs[id]
	s.mu.Unlock()
	if !ok {
		return dirUser{}, false
	}
	u, ok := sc.userAt(email) // the scenario may have changed since
	if !ok || u.id != id {
		return dirUser{}, false
	}
	return u, true
}

// presenceRoles are the application permissions getPresencesByUserId accepts.
var presenceRoles = []string{"Presence.Read.All", "Presence.ReadWrite.All"}

func hasRole(roles []string, accepted ...string) bool {
	for _, r := range roles {
		if spelled(accepted, r) != "" {
			return true
		}
	}
	return false
}

// getPresences serves POST /communications/getPresencesByUserId {"ids":[…]}: the presence of each
// id that is a user, in the order asked, once each. An id that is no user is left out of the
// answer (Graph's documentation does not say what Graph does with one). More than 650 ids, or an
// id that is not a GUID, fail the whole request (400).
func (s *Server) getPresences(req *gReq, sc *Scenario) *gResp {
	s.mu.Lock()
	s.st.presenceCalls++
	s.mu.Unlock()
	if !hasRole(req.roles, presenceRoles...) {
		return s.errResp(http.StatusForbidden, "Forbidden", fmt.Sprintf("Missing role permissions on the request. API requires one of '%s'. Roles on the request '%s'.",
			strings.Join(presenceRoles, ", "), strings.Join(req.roles, ", ")), req)
	}
	var body struct {
		IDs []string `json:"ids"` // msgraph-sdk-go sends "ids"; any casing is read
	}
	if err := json.Unmarshal(req.body, &body); err != nil || len(req.body) == 0 {
		return s.errResp(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.", req)
	}
	bad := func(msg string) *gResp { return s.errResp(http.StatusBadRequest, "BadRequest", msg, req) }
	switch {
	case len(body.IDs) == 0:
		return bad("The parameter 'ids' must contain at least one user id.")
	case len(body.IDs) > maxPresenceIDs:
		return bad(fmt.Sprintf("The number of user ids requested (%d) exceeds the maximum of %d.", len(body.IDs), maxPresenceIDs))
	}
	for _, id := range body.IDs {
		if !guidShape.MatchString(strings.TrimSpace(id)) {
			return bad(fmt.Sprintf("Invalid user id '%s': ids must be user object ids (GUIDs).", id))
		}
	}
	now := s.cfg.PresenceNow().UTC()
	values := make([]any, 0, len(body.IDs))
	seen := map[string]bool{}
	for _, id := range body.IDs {
		id = strings.ToLower(strings.TrimSpace(id))
		if seen[id] {
			continue
		}
		seen[id] = true
		if u, ok := s.userByID(sc, id); ok {
			values = append(values, sc.presenceOf(u, now))
		}
	}
	s.mu.Lock()
	s.st.presenceIDs += int64(len(body.IDs))
	s.mu.Unlock()
	out, _ := json.Marshal(orderedContext{
		Context: "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.presence)",
		Value:   values,
	})
	return &gResp{status: http.StatusOK, header: map[string]string{"Content-Type": odataJSON, "Cache-Control": "private"}, body: out}
}
