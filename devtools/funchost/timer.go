package funchost

import (
	"context"
	"github.com/calstatus/calstatus/internal/ncrontab"
	"sync"
	"time"
)

// timerState is the in-memory schedule monitor (the real host keeps it in a
// blob under azure-webjobs-hosts/timers when useMonitor is on).
type timerState struct {
	mu          sync.Mutex
	last        time.Time
	next        time.Time
	lastUpdated time.Time
}

// runTimer fires fn on its schedule until the host stops. Like the host's
// TimerTriggerListener, the next occurrence is computed after each
// invocation completes, so invocations never overlap.
func (h *Host) runTimer(fn *function) {
	defer h.bg.Done()
	st := h.timers[fn.Name]
	if fn.RunOnStartup {
		h.fireTimer(h.invCtx, fn, false, "Timer fired at "+netDate(time.Now().In(h.loc))+" (runOnStartup)", true)
	}
	for {
		now := time.Now().In(h.loc)
		next := fn.schedule.Next(now)
		if next.IsZero() {
			h.logf("funchost: timer %s: schedule '%s' has no next occurrence; the timer stops", fn.Name, fn.Schedule)
			return
		}
		st.mu.Lock()
		st.next = next
		st.mu.Unlock()
		t := time.NewTimer(time.Until(next))
		select {
		case <-h.pollCtx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		h.fireTimer(h.invCtx, fn, false, "Timer fired at "+netDate(time.Now().In(h.loc)), true)
	}
}

// fireTimer invokes a timer function. scheduled says whether this is a
// scheduled occurrence (which updates the schedule status) or a manual run.
func (h *Host) fireTimer(ctx context.Context, fn *function, pastDue bool, reason string, scheduled bool) *Result {
	st := h.timers[fn.Name]
	var status any // null when the monitor is off
	now := time.Now().In(h.loc)
	st.mu.Lock()
	if st.next.IsZero() {
		st.next = fn.schedule.Next(now)
	}
	if fn.monitor {
		status = map[string]any{
			"Last":        netDate(st.last),
			"Next":        netDate(st.next),
			"LastUpdated": netDate(st.lastUpdated),
		}
	}
	occurrence := st.next
	st.mu.Unlock()

	schedule := map[string]any{}
	if _, ok := fn.schedule.(*ncrontab.Cron); ok {
		schedule["AdjustForDST"] = true
	}
	data := map[string]any{
		fn.trigger.Name: map[string]any{
			"Schedule":       schedule,
			"ScheduleStatus": status,
			"IsPastDue":      pastDue,
		},
	}
	res := h.invoke(ctx, fn, invocationInput{data: data, metadata: map[string]any{}, reason: reason})
	if scheduled {
		after := time.Now().In(h.loc)
		st.mu.Lock()
		st.last = occurrence
		st.next = fn.schedule.Next(after)
		st.lastUpdated = after
		next := st.next
		st.mu.Unlock()
		if !res.OK {
			h.logf("funchost: timer %s failed; timers are not retried (next occurrence %s)", fn.Name, netDate(next))
		}
	}
	return res
}
