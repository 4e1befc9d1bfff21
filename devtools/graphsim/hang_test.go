package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestBatchHang(t *testing.T) {
	s := startSim(t, Config{})
	tok := fetchToken(t, s)
	body, _ := json.Marshal(batchOf(usersN(2, "u%02d@contoso.example"), testDay, one))
	send := func(ctx context.Context) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", s.GraphURL()+"/$batch", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := s.Client().Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	sendFor := func(d time.Duration) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return send(ctx)
	}
	s.ResetStats()

	// Held until the client gives up, unanswered.
	s.SetFaults(Faults{BatchHangFraction: 1})
	start := time.Now()
	if st, err := sendFor(200 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("status %d, err %v: want the client's deadline", st, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	if st := s.Stats(); st.Hung != 1 || len(st.HTTPStatuses) != 0 || st.SubRequests != 0 {
		t.Fatalf("stats %+v", st)
	}

	// A fraction: each re-send of the same $batch gets a fresh, seeded draw.
	s.ResetStats()
	s.SetFaults(Faults{Seed: 3, BatchHangFraction: 0.5})
	var outcomes []bool
	for range 8 {
		st, err := sendFor(300 * time.Millisecond)
		if err == nil && st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
		outcomes = append(outcomes, err != nil)
	}
	hung := 0
	for _, h := range outcomes {
		if h {
			hung++
		}
	}
	if st := s.Stats(); hung == 0 || hung == 8 || st.Hung != int64(hung) || st.HTTPStatuses[200] != int64(8-hung) {
		t.Fatalf("%d of 8 hung (%v), stats %+v", hung, outcomes, st)
	}
	s.SetFaults(Faults{Seed: 3, BatchHangFraction: 0.5})
	for i, want := range outcomes[:3] {
		if _, err := sendFor(300 * time.Millisecond); (err != nil) != want {
			t.Fatalf("send %d: hung %v, the first time %v", i, err != nil, want)
		}
	}

	// Close releases a call whose client would wait for ever.
	s.ResetStats()
	s.SetFaults(Faults{BatchHangFraction: 1})
	errc := make(chan error, 1)
	go func() {
		_, err := send(context.Background())
		errc <- err
	}()
	for s.Stats().Hung == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hung $batch")
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the hung call was answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hung call outlived Close")
	}
}
