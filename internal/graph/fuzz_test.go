package graph

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/calstatus/calstatus/internal/calendar"
)

// Whatever Graph answers to a $batch, reading it gives sub-responses and, for each, availability or
// failures for its users — never a panic; every user asked for is accounted for.
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`{"responses":[{"id":"1","status":200,"body":{"value":[{"scheduleId":"a@x","availabilityView":"22","scheduleItems":[{"status":"Busy","start":{"dateTime":"2026-11-22T10:00:00.0000000","timeZone":"UTC"},"end":{"dateTime":"2026-11-22T11:00:00.0000000","timeZone":"UTC"}}]}]}}]}`,
		`{"responses":[{"id":"1","status":200,"body":"eyJ2YWx1ZSI6W119"}]}`,
		`{"responses":[{"id":"1","status":200,"body":"plain text"}]}`,
		`{"responses":[{"id":"1","status":429,"headers":{"Retry-After":"3"},"body":{"error":{"code":"TooManyRequests"}}}]}`,
		`{"responses":[{"id":"1","status":200,"body":{"value":[{"scheduleId":"a@x","availabilityView":"0123456789"}]}}]}`,
		`{"responses":[1,"x",null]}`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	w := Window{Start: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 22, 10, 10, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, data []byte) {
		subs, err := parseBatch(data)
		if err != nil {
			return
		}
		for _, sub := range subs {
			_ = sub.retryAfter()
			res := Result{Availability: map[string]calendar.Availability{}}
			sr := &subRequest{emails: []string{"a@x", "b@x"}, mailbox: "a@x", tried: map[string]bool{}}
			if sub.ok() && sub.problem == "" {
				interpret(sr, sub.status, sub.body, w, 5, &res)
			} else if sub.status != 0 {
				_ = sub.err()
			}
			if sub.ok() && sub.problem == "" {
				for _, email := range sr.emails {
					_, answered := res.Availability[email]
					failed := false
					for _, f := range res.Failures {
						failed = failed || f.Email == email
					}
					if !answered && !failed {
						t.Fatalf("%s neither answered nor failed", email)
					}
				}
			}
		}
	})
}

// Whatever a user puts in their automatic reply, its plain text comes without a panic, trimmed, and
// valid UTF-8 when the reply was.
func FuzzPlainText(f *testing.F) {
	for _, s := range []string{
		outlookReply, "Out until Monday.\r\n\r\nAsk Sam.", "",
		"<ul><li>a<ul><li>b</li></ul></li></ul>", "<script>x<y</script><style>p{}</style>&nbsp;",
		"<div><p>a <b>b <i>c</div></b> &amp", "<pre>\n a\n</pre>", "<!-- x", "a <b", "<table><td>x<tr>y",
		"<p>\u00a0\u2028\x00</p>", "\xff<p>\xfe</p>", "<script/>x", strings.Repeat("<div>", 600) + "a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := plainText(in)
		if strings.TrimSpace(out) != out {
			t.Fatalf("plainText(%q) = %q, not trimmed", in, out)
		}
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("plainText(%q) = %q, not UTF-8", in, out)
		}
		if strings.Contains(out, "\n\n\n") {
			t.Fatalf("plainText(%q) = %q, more than one blank line", in, out)
		}
	})
}
