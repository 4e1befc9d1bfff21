package graphsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Graph free/busy statuses (scheduleItem.status values).
const (
	StatusFree             = "free"
	StatusTentative        = "tentative"
	StatusBusy             = "busy"
	StatusOOF              = "oof"
	StatusWorkingElsewhere = "workingElsewhere"
	StatusUnknown          = "unknown"
)

// statusRank orders statuses by priority: oof > busy > tentative > workingElsewhere > free.
func statusRank(s string) int {
	switch s {
	case StatusOOF:
		return 4
	case StatusBusy:
		return 3
	case StatusTentative:
		return 2
	case StatusWorkingElsewhere:
		return 1
	default:
		return 0
	}
}

// availabilityDigit is the availabilityView digit of a status.
func availabilityDigit(s string) byte {
	switch s {
	case StatusTentative:
		return '1'
	case StatusBusy:
		return '2'
	case StatusOOF:
		return '3'
	case StatusWorkingElsewhere:
		return '4'
	default:
		return '0'
	}
}

// normalizeStatus maps a status written in any case to Graph's spelling.
func normalizeStatus(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "free":
		return StatusFree, true
	case "tentative":
		return StatusTentative, true
	case "busy":
		return StatusBusy, true
	case "oof", "outofoffice", "out-of-office":
		return StatusOOF, true
	case "workingelsewhere":
		return StatusWorkingElsewhere, true
	case "unknown":
		return StatusUnknown, true
	}
	return "", false
}

// Event is one calendar item as getSchedule reports it. Times are UTC.
type Event struct {
	Status    string    `json:"status"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Subject   string    `json:"subject,omitempty"`
	Location  string    `json:"location,omitempty"`
	IsPrivate bool      `json:"isPrivate,omitempty"`
}

// UnmarshalJSON accepts RFC 3339 times and zone-less times (taken as UTC),
// and statuses in any case.
func (e *Event) UnmarshalJSON(b []byte) error {
	var raw struct {
		Status    string `json:"status"`
		Start     string `json:"start"`
		End       string `json:"end"`
		Subject   string `json:"subject"`
		Location  string `json:"location"`
		IsPrivate bool   `json:"isPrivate"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	st := raw.Status
	if st == "" {
		st = StatusBusy
	}
	status, ok := normalizeStatus(st)
	if !ok {
		return fmt.Errorf("event status %q is not one of free, tentative, busy, oof, workingElsewhere, unknown", raw.Status)
	}
	start, err := parseLooseTime(raw.Start)
	if err != nil {
		return fmt.Errorf("event start: %w", err)
	}
	end, err := parseLooseTime(raw.End)
	if err != nil {
		return fmt.Errorf("event end: %w", err)
	}
	if !end.After(start) {
		return fmt.Errorf("event %q ends (%s) before it starts (%s)", raw.Subject, raw.End, raw.Start)
	}
	*e = Event{Status: status, Start: start, End: end, Subject: raw.Subject, Location: raw.Location, IsPrivate: raw.IsPrivate}
	return nil
}

// parseLooseTime parses RFC 3339 or a zone-less ISO time (UTC).
func parseLooseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse time %q (want RFC 3339 or 2006-01-02T15:04:05)", s)
}

// Mailbox describes one mailbox of a scenario, and the directory user who owns it (unless Missing).
type Mailbox struct {
	// ID is the user's object id, under which the mailbox can also be addressed in URLs
	// (/users/{id}) and presence asked for; optional, default ObjectID of the mailbox's address.
	ID string `json:"id,omitempty"`
	// UserPrincipalName and Mail are the user's in the directory (GET /users); each defaults to
	// the mailbox's address. A user whose mail differs from their UPN sets one of them.
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	Mail              string `json:"mail,omitempty"`
	// Events replace the generator for this mailbox (an empty list means always free).
	Events []Event `json:"events,omitempty"`
	// Generated keeps the generator's events for this mailbox (added to Events).
	Generated bool `json:"generated,omitempty"`
	// Missing: the address does not resolve. As a schedule: error ErrorMailRecipientNotFound;
	// in the URL: 404 ErrorItemNotFound.
	Missing bool `json:"missing,omitempty"`
	// Unlicensed: the user exists but has no Exchange Online mailbox. In the URL: 404
	// MailboxNotEnabledForRESTAPI; as a schedule: error ErrorMailRecipientNotFound.
	Unlicensed bool `json:"unlicensed,omitempty"`
	// ScheduleError is a responseCode returned for this address as a schedule
	// (e.g. ErrorNoFreeBusyAccess, ErrorProxyRequestNotAllowed). It is getSchedule's alone: the
	// mailbox's own calendarView (application access) still lists its events.
	ScheduleError string `json:"scheduleError,omitempty"`
	// HideItems: getSchedule answers this address with its availabilityView and no scheduleItems,
	// as for a mailbox whose sharing settings hide its items (calendarView still lists them).
	HideItems bool `json:"hideItems,omitempty"`
	// PathError is the error code returned (404) when this mailbox is used in the URL
	// (e.g. ErrorItemNotFound, MailboxNotEnabledForRESTAPI).
	PathError string `json:"pathError,omitempty"`

	// Presence are the times Teams shows the user in a state of its own (a call, a presentation);
	// outside them presence follows the calendar (see presence.go).
	Presence []PresenceWindow `json:"presence,omitempty"`
	// AutomaticReplies are the times the user's Outlook automatic replies are on.
	AutomaticReplies []AutomaticReplies `json:"automaticReplies,omitempty"`
	// NoTeams: the user has no Teams; presence answers PresenceUnknown.
	NoTeams bool `json:"noTeams,omitempty"`
}

// Generator configures the deterministic calendar generator used for mailboxes a scenario
// does not list.
type Generator struct {
	Disabled bool  `json:"disabled,omitempty"`
	Seed     int64 `json:"seed"`
	// BusyFraction is the expected fraction of time (over 24 h) covered by meetings. Default 0.4.
	BusyFraction float64 `json:"busyFraction,omitempty"`
	// Domain, if set, restricts generation to addresses @Domain; others are missing.
	Domain string `json:"domain,omitempty"`
	// OOFDayFraction is the chance that a user is out of office for a whole day. Default 0.03.
	OOFDayFraction float64 `json:"oofDayFraction,omitempty"`
}

// Scenario maps mailboxes (email, case-insensitive) to calendars and flags. Treat a Scenario as
// immutable once handed to a Server (use Server.SetScenario to swap it).
type Scenario struct {
	Generator Generator           `json:"generator"`
	Mailboxes map[string]*Mailbox `json:"mailboxes,omitempty"`

	once  sync.Once
	index map[string]*mailboxEntry // lowercased email and id -> entry
	// The directory of the listed users (not Missing): lowercased UPN and mail -> entry; taken
	// holds every address a listed mailbox uses, which the generator then has no user for.
	byUPN, byMail map[string]*mailboxEntry
	taken         map[string]bool
}

type mailboxEntry struct {
	email string // lowercased
	mb    *Mailbox
	// The user's directory entry, lowercased.
	id, upn, mail string
}

// DefaultScenario returns a scenario with only the generator (seed 1, busy fraction 0.4).
func DefaultScenario() *Scenario {
	return &Scenario{Generator: Generator{Seed: 1, BusyFraction: 0.4}}
}

// LoadScenario reads a scenario JSON file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseScenario(b)
}

// ParseScenario parses a scenario from JSON.
func ParseScenario(b []byte) (*Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks the scenario's values.
func (s *Scenario) Validate() error {
	g := s.Generator
	if g.BusyFraction < 0 || g.BusyFraction > 0.95 {
		return fmt.Errorf("scenario: generator.busyFraction %v must be in [0, 0.95]", g.BusyFraction)
	}
	if g.OOFDayFraction < 0 || g.OOFDayFraction > 1 {
		return fmt.Errorf("scenario: generator.oofDayFraction %v must be in [0, 1]", g.OOFDayFraction)
	}
	upns, mails := map[string]string{}, map[string]string{}
	for email, mb := range s.Mailboxes {
		if mb == nil {
			return fmt.Errorf("scenario: mailbox %q is null", email)
		}
		if !strings.Contains(email, "@") {
			return fmt.Errorf("scenario: mailbox key %q is not an email address", email)
		}
		for _, e := range mb.Events {
			if _, ok := normalizeStatus(e.Status); !ok {
				return fmt.Errorf("scenario: mailbox %q: bad status %q", email, e.Status)
			}
			if !e.End.After(e.Start) {
				return fmt.Errorf("scenario: mailbox %q: event %q ends before it starts", email, e.Subject)
			}
		}
		if err := mb.validatePresence(); err != nil {
			return fmt.Errorf("scenario: mailbox %q: %w", email, err)
		}
		for field, v := range map[string]string{"userPrincipalName": mb.UserPrincipalName, "mail": mb.Mail} {
			if v != "" && !strings.Contains(v, "@") {
				return fmt.Errorf("scenario: mailbox %q: %s %q is not an address", email, field, v)
			}
		}
		if mb.Missing {
			continue // no user: nothing of it in the directory
		}
		// Two users with one UPN or one mail would make a lookup's answer ambiguous.
		for _, d := range []struct {
			seen map[string]string
			v    string
			what string
		}{{upns, cmp.Or(mb.UserPrincipalName, email), "userPrincipalName"}, {mails, cmp.Or(mb.Mail, email), "mail"}} {
			v := strings.ToLower(strings.TrimSpace(d.v))
			if other, dup := d.seen[v]; dup {
				return fmt.Errorf("scenario: mailboxes %q and %q have the same %s %q", other, email, d.what, v)
			}
			d.seen[v] = email
		}
	}
	return nil
}

func (s *Scenario) buildIndex() {
	s.once.Do(func() {
		s.index = make(map[string]*mailboxEntry, 2*len(s.Mailboxes))
		s.byUPN = make(map[string]*mailboxEntry, len(s.Mailboxes))
		s.byMail = make(map[string]*mailboxEntry, len(s.Mailboxes))
		s.taken = make(map[string]bool, len(s.Mailboxes))
		for email, mb := range s.Mailboxes {
			email = strings.ToLower(strings.TrimSpace(email))
			e := &mailboxEntry{email: email, mb: mb,
				id:   strings.ToLower(cmp.Or(strings.TrimSpace(mb.ID), ObjectID(email))),
				upn:  strings.ToLower(strings.TrimSpace(cmp.Or(mb.UserPrincipalName, email))),
				mail: strings.ToLower(strings.TrimSpace(cmp.Or(mb.Mail, email))),
			}
			s.index[e.email] = e
			s.index[e.id] = e
			s.taken[e.email] = true
			if mb.Missing {
				continue
			}
			s.byUPN[e.upn], s.byMail[e.mail] = e, e
			s.taken[e.upn], s.taken[e.mail] = true, true
		}
	})
}

func (s *Scenario) lookup(key string) *mailboxEntry {
	s.buildIndex()
	return s.index[strings.ToLower(strings.TrimSpace(key))]
}

// Mailbox returns the listed mailbox for an email address or id (case-insensitive), or nil.
func (s *Scenario) Mailbox(emailOrID string) *Mailbox {
	if e := s.lookup(emailOrID); e != nil {
		return e.mb
	}
	return nil
}

// resolution is how an address resolves.
type resolution struct {
	email     string // canonical lowercased email ("" when unresolvable)
	mb        *Mailbox
	generated bool
	missing   bool
}

func (s *Scenario) resolve(key string) resolution {
	key = strings.ToLower(strings.TrimSpace(key))
	if e := s.lookup(key); e != nil {
		return resolution{email: e.email, mb: e.mb, generated: e.mb.Generated, missing: e.mb.Missing}
	}
	if s.Generator.Disabled || !strings.Contains(key, "@") || strings.HasPrefix(key, "@") || strings.HasSuffix(key, "@") {
		return resolution{email: key, missing: true}
	}
	if d := strings.ToLower(strings.TrimPrefix(s.Generator.Domain, "@")); d != "" && !strings.HasSuffix(key, "@"+d) {
		return resolution{email: key, missing: true}
	}
	return resolution{email: key, generated: true}
}

// Readable reports whether getSchedule would return a calendar (no schedule error) for email.
func (s *Scenario) Readable(email string) bool {
	r := s.resolve(email)
	if r.missing {
		return false
	}
	if r.mb != nil && (r.mb.Unlicensed || r.mb.ScheduleError != "") {
		return false
	}
	return true
}

// EventsFor returns the events of email overlapping [from, to), sorted by start.
// Unreadable mailboxes (missing, unlicensed, schedule error) have none.
func (s *Scenario) EventsFor(email string, from, to time.Time) []Event {
	r := s.resolve(email)
	if r.mb != nil && r.mb.ScheduleError != "" {
		return nil
	}
	return s.eventsOf(r, from, to)
}

// eventsOf returns the events of a resolved mailbox overlapping [from, to), sorted by start: none
// for a missing or unlicensed one. A ScheduleError (getSchedule's alone) does not hide them.
func (s *Scenario) eventsOf(r resolution, from, to time.Time) []Event {
	from, to = from.UTC(), to.UTC()
	if r.missing || !to.After(from) {
		return nil
	}
	var out []Event
	if r.mb != nil {
		if r.mb.Unlicensed {
			return nil
		}
		for _, e := range r.mb.Events {
			if e.Start.Before(to) && e.End.After(from) {
				e.Start, e.End = e.Start.UTC(), e.End.UTC()
				if st, ok := normalizeStatus(e.Status); ok {
					e.Status = st
				}
				out = append(out, e)
			}
		}
	}
	if r.generated {
		out = append(out, s.generate(r.email, from, to)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].End.Before(out[j].End)
	})
	return out
}

// StatusAt returns the status of email at t: the highest-priority status of the events covering t
// (oof > busy > tentative > workingElsewhere > free), "free" when none does, and "unknown" when
// the mailbox's schedule cannot be read (missing, unlicensed, schedule error).
func (s *Scenario) StatusAt(email string, t time.Time) string {
	if !s.Readable(email) {
		return StatusUnknown
	}
	t = t.UTC()
	best := StatusFree
	for _, e := range s.EventsFor(email, t, t.Add(time.Nanosecond)) {
		if statusRank(e.Status) > statusRank(best) {
			best = e.Status
		}
	}
	return best
}

// ---- generator ----

var (
	genSubjects = []string{
		"Weekly sync", "1:1", "Design review", "Sprint planning", "Customer call", "Standup",
		"Architecture deep dive", "Interview", "Budget review", "Retrospective", "Lunch & learn",
		"Incident review", "Roadmap discussion", "Vendor demo", "Team meeting", "Focus time",
		"Pairing session", "All hands", "Release go/no-go", "Onboarding",
	}
	genLocations = []string{
		"Microsoft Teams Meeting", "Room 4.12", "Room Aurora", "Cafeteria", "Building 2 / Lab",
		"Microsoft Teams Meeting", "", "Zoom", "Room Kilimanjaro", "",
	}
	genDurations = []int{15, 30, 30, 30, 45, 60, 60, 25, 50, 90} // minutes, multiples of 5
)

func (s *Scenario) busyFraction() float64 {
	if s.Generator.BusyFraction > 0 {
		return s.Generator.BusyFraction
	}
	return 0.4
}

func (s *Scenario) oofFraction() float64 {
	if s.Generator.OOFDayFraction > 0 {
		return s.Generator.OOFDayFraction
	}
	return 0.03
}

// generate returns generated events overlapping [from, to).
func (s *Scenario) generate(email string, from, to time.Time) []Event {
	var out []Event
	// Events of the previous day may spill over midnight.
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	for ; day.Before(to); day = day.AddDate(0, 0, 1) {
		for _, e := range s.generateDay(email, day) {
			if e.Start.Before(to) && e.End.After(from) {
				out = append(out, e)
			}
		}
	}
	return out
}

func genSeed(seed int64, email string, day time.Time) (uint64, uint64) {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d|%s|%s", seed, strings.ToLower(email), day.Format("2006-01-02"))
	a := h.Sum64()
	h.Write([]byte("#2"))
	return a, h.Sum64()
}

// GenerateDay returns the generated events starting on the UTC day of day (deterministic in
// generator seed, email and day). Exposed for tests and tools.
func (s *Scenario) GenerateDay(email string, day time.Time) []Event {
	d := day.UTC()
	return s.generateDay(strings.ToLower(email), time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC))
}

func (s *Scenario) generateDay(email string, day time.Time) []Event {
	a, b := genSeed(s.Generator.Seed, email, day)
	rng := rand.New(rand.NewPCG(a, b))
	if rng.Float64() < s.oofFraction() {
		subj := []string{"Out of office", "Vacation", "Sick leave", "Conference travel"}[rng.IntN(4)]
		return []Event{{Status: StatusOOF, Start: day, End: day.AddDate(0, 0, 1), Subject: subj}}
	}
	f := s.busyFraction()
	var out []Event
	if f <= 0 {
		return nil
	}
	meanDur := 0.0
	for _, d := range genDurations {
		meanDur += float64(d)
	}
	meanDur /= float64(len(genDurations))
	meanGap := meanDur * (1 - f) / f // so that dur/(dur+gap) ≈ f

	const step = 5 * time.Minute
	t := day
	end := day.AddDate(0, 0, 1)
	first := true
	for {
		gap := rng.ExpFloat64() * meanGap
		if first {
			gap = rng.Float64() * 2 * meanGap // start of day: uniform offset
			first = false
		}
		t = t.Add(time.Duration(math.Round(gap/5)) * step)
		if !t.Before(end) {
			break
		}
		dur := time.Duration(genDurations[rng.IntN(len(genDurations))]) * time.Minute
		ev := Event{Start: t, End: t.Add(dur)}
		switch x := rng.Float64(); {
		case x < 0.78:
			ev.Status = StatusBusy
		case x < 0.95:
			ev.Status = StatusTentative
		default:
			ev.Status = StatusWorkingElsewhere
		}
		ev.Subject = genSubjects[rng.IntN(len(genSubjects))]
		ev.Location = genLocations[rng.IntN(len(genLocations))]
		if rng.Float64() < 0.1 {
			ev.IsPrivate = true
		}
		out = append(out, ev)
		t = ev.End
	}
	// Occasional working-elsewhere block (2-4 h) that overlaps meetings.
	if rng.Float64() < 0.1 {
		startSlot := rng.IntN(24*12 - 48)
		hours := 2 + rng.IntN(3)
		st := day.Add(time.Duration(startSlot) * step)
		out = append(out, Event{Status: StatusWorkingElsewhere, Start: st, End: st.Add(time.Duration(hours) * time.Hour), Subject: "Working from home"})
	}
	return out
}
