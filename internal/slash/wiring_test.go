package slash

import (
	"context"
	"errors"
	"testing"

	"github.com/calstatus/calstatus/internal/calendar"
	"github.com/calstatus/calstatus/internal/graph"
	"github.com/calstatus/calstatus/internal/mattermost"
	"github.com/calstatus/calstatus/internal/store"
)

// The real adapters are what the handler and Register take.
var (
	_ Store     = (*store.Store)(nil)
	_ Users     = (*mattermost.Client)(nil)
	_ Registrar = (*mattermost.Client)(nil)
	_           = GraphSchedules((*graph.Client)(nil))
)

type fakeGraph struct {
	res graph.Result
	err error
}

func (f fakeGraph) GetSchedules(context.Context, []string, graph.Window) (graph.Result, error) {
	return f.res, f.err
}

func TestGraphSchedules(t *testing.T) {
	ctx := context.Background()
	av := calendar.NewAvailability("me@x.test", nil)
	got, err := GraphSchedules(fakeGraph{res: graph.Result{Availability: map[string]calendar.Availability{"me@x.test": av}}})(ctx, "Me@X.test", graph.Window{})
	if err != nil || got.Email != "me@x.test" {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = GraphSchedules(fakeGraph{res: graph.Result{Failures: []graph.Failure{{Email: "me@x.test", Class: "no_access", Message: "Access denied"}}}})(ctx, "me@x.test", graph.Window{})
	if err == nil || err.Error() != "no_access: Access denied" {
		t.Fatalf("failure: %v", err)
	}
	if _, err := GraphSchedules(fakeGraph{err: errors.New("503")})(ctx, "me@x.test", graph.Window{}); err == nil || err.Error() != "503" {
		t.Fatalf("error: %v", err)
	}
	if _, err := GraphSchedules(fakeGraph{})(ctx, "me@x.test", graph.Window{}); err == nil {
		t.Fatal("no answer: no error")
	}
}
