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
	if h.FunctionTimeout == nil || *h.FunctionTimeout == "-1" {
		return 0, nil
	}
	d, err := parseTimeSpan(*h.FunctionTimeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("host.json: functionTimeout %q is not a positive hh:mm:ss", *h.FunctionTimeout)
	}
	return d, nil
}

// parseTimeSpan reads [d.]hh:mm:ss[.fraction].
func parseTimeSpan(s string) (time.Duration, error) {
	var days int
	if dayPart, rest, ok := strings.Cut(s, "."); ok && strings.Count(dayPart, ":") == 0 {
		n, err := strconv.Atoi(dayPart)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("days %q", dayPart)
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("want hh:mm:ss")
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, fmt.Errorf("want hh:mm:ss")
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second)), nil
}
