package statuspage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

// num writes a count with thousands separators: 12,345.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return num(n) + " " + what + "s"
}

// span says how long in words: "45 seconds", "17 minutes", "3 hours".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return plural(int(d.Seconds()), "second")
	case d < 120*time.Minute:
		return plural(int(d.Minutes()), "minute")
	default:
		return plural(int(d.Hours()), "hour")
	}
}

// ago says how long ago, briefly: "40 s ago", "2 min ago", "3 h ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < 120*time.Minute:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	default:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
}

// seconds writes a duration in milliseconds as seconds: "42.3 s", "—" for none.
func seconds(ms int64) string {
	if ms <= 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func clock(t time.Time) string { return t.UTC().Format("15:04") }

// classCount is one failure class and its count.
type classCount struct {
	Class string
	N     int
}

// byCount lists failure classes, most first (then by name).
func byCount(m map[string]int) []classCount {
	out := make([]classCount, 0, len(m))
	for k, v := range m {
		if v != 0 {
			out = append(out, classCount{k, v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Class < out[j].Class
	})
	return out
}

// failureText lists failure classes: "throttled 3, mailbox_not_found 1".
func failureText(m map[string]int) string {
	var parts []string
	for _, c := range byCount(m) {
		parts = append(parts, c.Class+" "+num(c.N))
	}
	return strings.Join(parts, ", ")
}
