package azfunc

import (
	"testing"
	"time"
)

func TestFunctionTimeout(t *testing.T) {
	for _, tc := range []struct {
		json string
		want time.Duration
		bad  bool
	}{
		{`{"functionTimeout":"00:05:00"}`, 5 * time.Minute, false},
		{`{"functionTimeout":"00:00:45.5"}`, 45500 * time.Millisecond, false},
		{`{"functionTimeout":"1.02:00:00"}`, 26 * time.Hour, false},
		{`{"functionTimeout":"-1"}`, 0, false},
		{`{"version":"2.0"}`, 0, false},
		{`{"functionTimeout":"5m"}`, 0, true},
		{`{"functionTimeout":"00:61:00"}`, 0, true},
		{`{"functionTimeout":"00:00:00"}`, 0, true},
		{`{"functionTimeout":300}`, 0, true},
		{`not json`, 0, true},
	} {
		got, err := FunctionTimeout([]byte(tc.json))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: %v, %v; want %v (error %v)", tc.json, got, err, tc.want, tc.bad)
		}
	}
}
