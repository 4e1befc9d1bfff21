package azfunc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FunctionTimeout reads functionTimeout from host.json ("hh:mm:ss" or "d.hh:mm:ss", the .NET
// TimeSpan form the host reads): how long the host lets one invocation run before it abandons it.
// 0 means host.json leaves it to the plan ("-1" or absent).
func FunctionTimeout(hostJSON []byte) (time.Duration, error) {
	var h struct {
		FunctionTimeout *string `json:"functionTimeout"`
	}
	if err := json.Unmarshal(hostJSON, &h); err != nil {
		return 0, fmt.Errorf("host.json: %w", err)
	}
	if h.FunctionTimeout == nil {
		return 0, nil
	}
	d, err := ParseTimeSpan(*h.FunctionTimeout)
	switch {
	case err == nil && d < 0: // -1: unlimited
		return 0, nil
	case err != nil || d == 0:
		return 0, fmt.Errorf("host.json: functionTimeout %q is not a positive hh:mm:ss", *h.FunctionTimeout)
	}
	return d, nil
}

// ParseTimeSpan parses a .NET TimeSpan as host.json uses them:
// "hh:mm", "hh:mm:ss", "hh:mm:ss.fffffff", "d.hh:mm:ss[.fffffff]" or a
// whole number of days ("1"), optionally negative ("-1" = infinite where
// allowed).
func ParseTimeSpan(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("invalid TimeSpan %q (want hh:mm:ss or d.hh:mm:ss)", orig)
	}
	if s == "" {
		return bad()
	}
	var d time.Duration
	if !strings.Contains(s, ":") {
		days, err := strconv.Atoi(s)
		if err != nil || days < 0 {
			return bad()
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		days := 0
		colon := strings.IndexByte(s, ':')
		if dot := strings.IndexByte(s, '.'); dot >= 0 && dot < colon {
			n, err := strconv.Atoi(s[:dot])
			if err != nil || n < 0 {
				return bad()
			}
			days, s = n, s[dot+1:]
		}
		parts := strings.Split(s, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return bad()
		}
		hh, err1 := strconv.Atoi(parts[0])
		mm, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
			return bad()
		}
		var secs time.Duration
		if len(parts) == 3 {
			sec, frac, hasFrac := strings.Cut(parts[2], ".")
			ss, err := strconv.Atoi(sec)
			if err != nil || ss < 0 || ss > 59 {
				return bad()
			}
			secs = time.Duration(ss) * time.Second
			if hasFrac {
				if frac == "" || len(frac) > 7 {
					return bad()
				}
				f, err := strconv.Atoi(frac)
				if err != nil {
					return bad()
				}
				for i := len(frac); i < 7; i++ {
					f *= 10
				}
				secs += time.Duration(f) * 100 // ticks of 100 ns
			}
		}
		d = time.Duration(days)*24*time.Hour + time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + secs
	}
	if neg {
		d = -d
	}
	return d, nil
}
