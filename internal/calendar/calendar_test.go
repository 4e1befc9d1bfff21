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
			[]Event{{Start: at(9, 0), End: at(10, 0), Status: Busy, Subject: "secret", Location: "x", Private: true}},
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

func TestAtAndNext(t *testing.T) {
	a := Availability{Events: []Event{{Start: at(9, 0), End: at(10, 0), Status: Busy}, {Start: at(11, 0), End: at(12, 0), Status: OutOfOffice}}}
	if a.At(at(9, 59)).Status != Busy || a.At(at(10, 0)).Status != Free {
		t.Fatal("At boundaries wrong")
	}
	if e, ok := a.Next(at(10, 0), at(11, 5)); !ok || e.Status != OutOfOffice {
		t.Fatal("Next missed the 11:00 event")
	}
	if _, ok := a.Next(at(10, 0), at(11, 0)); ok {
		t.Fatal("Next must stop before limit")
	}
}
