package mmstate

import (
	"testing"
)

func TestRowString(t *testing.T) {
	for _, c := range []struct {
		r    Row
		want string
	}{
		{Row{Status: "dnd", Manual: true, PrevStatus: "online", DNDEndTime: 1735689600, LastActivityAt: 5}, "dnd manual prev=online end=1735689600"},
		{Row{Status: "away", PrevStatus: "dnd"}, "away auto prev=dnd"},
		{Row{}, `"" auto`},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.r, got, c.want)
		}
	}
}
