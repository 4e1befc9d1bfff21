package graphsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// calendarView serves GET /users/{id|upn}/calendarView?startDateTime=…&endDateTime=… (also
// /users/{id|upn}/calendar/calendarView), direct or in a $batch: the mailbox's events overlapping
// the window (the same events getSchedule reports), sorted by start, $top at a time (default 10,
// as Graph's; $skip pages on, with an @odata.nextLink while more remain). Times are in UTC, or in
// the Prefer: outlook.timezone zone. A mailbox that cannot be used in the URL never gets here
// (parseRoute answers 404); throttling is the mailbox's, as for getSchedule.
func (s *Server) calendarView(req *gReq, rt route, sc *Scenario) *gResp {
	s.mu.Lock()
	s.st.calendarViewCalls++
	s.mu.Unlock()
	if !hasCalendarRole(req.roles) {
		return s.errResp(http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.", req)
	}
	bad := func(msg string) *gResp { return s.errResp(http.StatusBadRequest, "ErrorInvalidParameter", msg, req) }
	q, err := url.ParseQuery(req.query)
	if err != nil {
		return s.errResp(http.StatusBadRequest, "BadRequest", "Invalid query string: "+err.Error(), req)
	}
	param := func(name string) string { // OData query options are case-insensitive
		for k, v := range q {
			if strings.EqualFold(k, name) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	rawStart, rawEnd := param("startDateTime"), param("endDateTime")
	if rawStart == "" || rawEnd == "" {
		return bad("This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.")
	}
	start, err := parseQueryTime(rawStart)
	if err != nil {
		return bad("startDateTime: " + err.Error())
	}
	end, err := parseQueryTime(rawEnd)
	if err != nil {
		return bad("endDateTime: " + err.Error())
	}
	if !end.After(start) {
		return bad("The parameter 'EndDateTime' must be later than 'StartDateTime'.")
	}
	top, skip := 10, 0
	if v := param("$top"); v != "" {
		if top, err = strconv.Atoi(v); err != nil || top < 1 || top > 1000 {
			return bad(fmt.Sprintf("Invalid value '%s' for $top: it must be between 1 and 1000.", v))
		}
	}
	if v := param("$skip"); v != "" {
		if skip, err = strconv.Atoi(v); err != nil || skip < 0 {
			return bad(fmt.Sprintf("Invalid value '%s' for $skip.", v))
		}
	}
	outLoc, outLabel := time.UTC, "UTC"
	if tz, ok := preferTimeZone(req.header); ok {
		loc, ok := loadTZ(tz)
		if !ok {
			return s.errResp(http.StatusBadRequest, "ErrorTimeZoneNotSupported", fmt.Sprintf("The time zone '%s' in the Prefer header is not supported.", tz), req)
		}
		outLoc = loc
		if loc != time.UTC {
			outLabel = tz
		}
	}

	res := sc.resolve(rt.mailbox)
	events := sc.eventsOf(res, start, end)
	total := len(events)
	events = events[min(skip, total):min(skip+top, total)]
	values := make([]any, 0, len(events))
	for _, e := range events {
		values = append(values, viewEvent(res.email, e, outLoc, outLabel))
	}
	out := map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('" + rt.mailbox + "')/calendarView",
		"value":          values,
	}
	if skip+top < total {
		next := url.Values{}
		next.Set("startDateTime", rawStart)
		next.Set("endDateTime", rawEnd)
		next.Set("$top", strconv.Itoa(top))
		next.Set("$skip", strconv.Itoa(skip+top))
		out["@odata.nextLink"] = s.GraphURL() + "/users/" + url.PathEscape(rt.mailbox) + "/calendarView?" + next.Encode()
	}
	b, _ := json.Marshal(out)
	return &gResp{status: http.StatusOK, header: map[string]string{"Content-Type": odataJSON, "Cache-Control": "private"}, body: b}
}

// parseQueryTime reads a calendarView bound: ISO 8601 with an offset, or without one (UTC). A "+"
// of an offset left unencoded in the URL reads as a space; it is taken back.
func parseQueryTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if i := strings.LastIndex(v, " "); i > 0 {
		v = v[:i] + "+" + v[i+1:]
	}
	return parseLooseTime(v)
}

type viewDateTime struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

type viewResponseStatus struct {
	Response string `json:"response"`
	Time     string `json:"time"`
}

type viewLocation struct {
	DisplayName string `json:"displayName"`
}

// viewEventOut is one event of a calendarView answer: the fields of Graph's event a sync reads.
type viewEventOut struct {
	ID             string             `json:"id"`
	ICalUID        string             `json:"iCalUId"`
	Subject        string             `json:"subject"`
	IsAllDay       bool               `json:"isAllDay"`
	IsCancelled    bool               `json:"isCancelled"`
	ShowAs         string             `json:"showAs"`
	Sensitivity    string             `json:"sensitivity"`
	Start          viewDateTime       `json:"start"`
	End            viewDateTime       `json:"end"`
	Location       viewLocation       `json:"location"`
	ResponseStatus viewResponseStatus `json:"responseStatus"`
}

// viewEvent renders e of mailbox; its ids are stable (derived from the mailbox and the event).
func viewEvent(mailbox string, e Event, loc *time.Location, label string) viewEventOut {
	h := sha256.Sum256([]byte(mailbox + "|" + e.Start.Format(time.RFC3339) + "|" + e.End.Format(time.RFC3339) + "|" + e.Subject))
	out := viewEventOut{
		ID:          "AAMkAG" + hex.EncodeToString(h[:24]),
		ICalUID:     "040000008200E00074C5B7101A82E008" + strings.ToUpper(hex.EncodeToString(h[24:])),
		Subject:     e.Subject,
		IsAllDay:    e.End.Sub(e.Start)%(24*time.Hour) == 0 && e.Start.Equal(e.Start.Truncate(24*time.Hour)),
		ShowAs:      e.Status,
		Sensitivity: "normal",
		Start:       viewDateTime{DateTime: e.Start.In(loc).Format(graphDateLayout), TimeZone: label},
		End:         viewDateTime{DateTime: e.End.In(loc).Format(graphDateLayout), TimeZone: label},
		Location:    viewLocation{DisplayName: e.Location},
		// The events stand for meetings the user accepted (tentative ones tentatively).
		ResponseStatus: viewResponseStatus{Response: "accepted", Time: "0001-01-01T00:00:00Z"},
	}
	if e.Status == StatusTentative {
		out.ResponseStatus.Response = "tentativelyAccepted"
	}
	if e.IsPrivate {
		out.Sensitivity, out.Subject, out.Location = "private", "", viewLocation{}
	}
	return out
}
