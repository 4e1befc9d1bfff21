package calendar

import (
	"reflect"
	"testing"
	"time"
)

func at(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, time.UTC) }

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]Status{"Busy": Busy, "TENTATIVE": Tentative, "oof": OutOfOffice,
		"WorkingElsewhere": WorkingElsewhere, "free": Free, "2": Busy, "weird": Unknown} {
		if got := ParseStatus(in); got != want {
			t.Errorf("ParseStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   []Event
		want []Event
	}{
		{"empty", nil, nil},
		{"free items dropped", []Event{{Start: at(9, 0), End: at(10, 0), Status: Free}}, nil},
		{"back to back merged",
			[]Event{{Start: at(9, 0), End: at(9, 30), Status: Busy, Subject: "a"}, {Start: at(9, 30), End: at(10, 0), Status: Busy, Subject: "b"}},
			[]Event{{Start: at(9, 0), End: at(10, 0), Status: Busy, Subject: "a"}}},
		{"overlap: busy beats tentative",
			[]Event{{Start: at(9, 0), End: at(11, 0), Status: Tentative}, {Start: at(10, 0), End: at(10, 30), Status: Busy}},
			[]Event{{Start: at(9, 0), End: at(10, 0), Status: Tentative}, {Start: at(10, 0), End: at(10, 30), Status: Busy}, {Start: at(10, 30), End: at(11, 0), Status: Tentative}}},
		{"oof beats all",
			[]Event{{Start: at(8, 0), End: at(18, 0), Status: OutOfOffice}, {Start: at(9, 0), End: at(10, 0), Status: Busy}},
			[]Event{{Start: at(8, 0), End: at(18, 0), Status: OutOfOffice}}},
		{"private hides subject",
			[]Event{{Start: at(9, 0), End: at(10, 0), Status: Busy, Subject: "secret", Private: true}},
			[]Event{{Start: at(9, 0), End: at(10, 0), Status: Busy, Private: true}}},
		{"gap kept",
			[]Event{{Start: at(9, 0), End: at(9, 30), Status: Busy}, {Start: at(10, 0), End: at(10, 30), Status: WorkingElsewhere}},
			[]Event{{Start: at(9, 0), End: at(9, 30), Status: Busy}, {Start: at(10, 0), End: at(10, 30), Status: WorkingElsewhere}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Normalize(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAtAndItemsAt(t *testing.T) {
	a := NewAvailability("a@x", []Event{
		{Start: at(11, 0), End: at(12, 0), Status: OutOfOffice},
		{Start: at(9, 0), End: at(10, 0), Status: Busy, Subject: "secret", Private: true},
		{Start: at(9, 30), End: at(10, 30), Status: Busy},
		{Start: at(8, 0), End: at(9, 0), Status: Free},
	})
	if a.At(at(9, 59)).Status != Busy || a.At(at(10, 30)).Status != Free {
		t.Fatal("At boundaries wrong")
	}
	if got := a.ItemsAt(at(9, 45)); len(got) != 2 || got[0].Subject != "" || !got[1].Start.Equal(at(9, 30)) {
		t.Fatalf("ItemsAt 9:45 = %+v, want both busy items, sorted, the private one without subject", got)
	}
	if len(a.Items) != 3 || len(a.ItemsAt(at(10, 30))) != 0 {
		t.Fatalf("items %+v: free dropped, end exclusive", a.Items)
	}
}
