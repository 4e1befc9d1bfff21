package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/funchost"
	"github.com/calstatus/calstatus/devtools/graphsim"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/handler/azfunc"
	"github.com/calstatus/calstatus/internal/shard"
)

// injectFaults runs every fault in turn, one round per soakBlock of the day, each at a fixed moment
// of its round; the faults that must hit a shard mid-way wait for the timer to fire first.
func (s *soak) injectFaults(ctx context.Context) {
	// recover is how long after a fault calstatus may take to catch up: the retries it was told to
	// wait, a hung attempt's timeout, a killed run's claims (one function timeout).
	plan := []struct {
		at, recover time.Duration
		name        string
		do          func(ctx context.Context)
	}{
		{30 * time.Second, 20 * time.Second, "Graph 429 storm (20 s)", s.graphStorm},
		{55 * time.Second, 15 * time.Second, "Graph 5xx burst (20 s)", s.graphBurst},
		{80 * time.Second, 45 * time.Second, "Graph $batch calls hanging (30 s)", s.graphHang},
		{115 * time.Second, 20 * time.Second, "Mattermost restarted mid-shard", s.mattermostRestart},
		{130 * time.Second, 15 * time.Second, "Mattermost answering 429 and 503 (20 s)", s.mattermostFaults},
		{155 * time.Second, 20 * time.Second, "Azurite restarted mid-cycle", s.azuriteRestart},
		{170 * time.Second, 20 * time.Second, "backlog: queues paused (25 s)", s.backlog},
		{205 * time.Second, 70 * time.Second, "handler killed mid-shard", s.killHandler},
	}
	for block := time.Duration(0); block+soakBlock <= s.day; block += soakBlock {
		for _, f := range plan {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(s.t0.Add(block + f.at))):
			}
			from := time.Now()
			s.t.Logf("soak: %s fault: %s", from.Format("15:04:05"), f.name)
			s.spansMu.Lock()
			s.spans = append(s.spans, span{from: from, to: from.Add(24 * time.Hour)}) // on
			s.spansMu.Unlock()
			f.do(ctx)
			s.spansMu.Lock()
			s.spans[len(s.spans)-1].to = time.Now().Add(f.recover)
			s.spansMu.Unlock()
		}
	}
}

func (s *soak) setGraphFaults(fn func(*graphsim.Faults)) {
	f := soakBaseFaults()
	fn(&f)
	if err := s.h.sim.SetFaults(f); err != nil {
		s.t.Error(err)
	}
}

// during runs a fault for d (or until the day is cancelled), then ends it.
func during(ctx context.Context, d time.Duration, start, end func()) {
	start()
	defer end()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (s *soak) graphStorm(ctx context.Context) {
	s.faults.graphStorms++
	during(ctx, 20*time.Second, func() {
		s.setGraphFaults(func(f *graphsim.Faults) {
			f.ThrottleFraction, f.BatchThrottleFraction, f.ThrottleRetryAfter = 0.5, 0.3, 2
		})
	}, func() { s.setGraphFaults(func(*graphsim.Faults) {}) })
}

func (s *soak) graphBurst(ctx context.Context) {
	s.faults.graphBursts++
	during(ctx, 20*time.Second, func() {
		s.setGraphFaults(func(f *graphsim.Faults) { f.ServerErrorFraction, f.BatchServerErrorFraction = 0.3, 0.3 })
	}, func() { s.setGraphFaults(func(*graphsim.Faults) {}) })
}

func (s *soak) graphHang(ctx context.Context) {
	s.faults.graphHangs++
	during(ctx, 30*time.Second, func() {
		s.setGraphFaults(func(f *graphsim.Faults) { f.BatchHangFraction = 0.3 })
	}, func() { s.setGraphFaults(func(*graphsim.Faults) {}) })
}

func (s *soak) mattermostFaults(ctx context.Context) {
	s.faults.mmFaults++
	during(ctx, 20*time.Second, func() { s.mm.set(0.15, 0.15) }, func() { s.mm.set(0, 0) })
}

// mattermostRestart restarts the real server while a shard works (its caches go with it). The
// users' model waits meanwhile: no manual change (the test's own calls would fail), no check until
// it knows what the restart did to everyone's status.
func (s *soak) mattermostRestart(ctx context.Context) {
	if !s.track.afterTimer(ctx, 400*time.Millisecond) {
		return
	}
	s.modelMu.Lock()
	defer s.modelMu.Unlock()
	before, err := s.db.Rows(ctx, s.ids)
	if err != nil {
		s.t.Error(err)
		return
	}
	s.faults.mmRestarts++
	s.t.Logf("soak: Mattermost restarted in %v", restartStack(s.t, "mattermost").Round(10*time.Millisecond))
	after, err := s.db.Rows(ctx, s.ids)
	if err != nil {
		s.t.Error(err)
		return
	}
	// Starting, Mattermost sets every status that is not manual to offline (SqlStatusStore.ResetAll):
	// users whose own status was automatic are offline now, their own status from here on — unless
	// calstatus's DND (manual) stood through the restart, which gives back what it kept. A DND of
	// calstatus's read before the restart but automatic after it was given back as the server
	// stopped (the give-back landed, then the reset): offline is theirs then too.
	for _, du := range s.users {
		b, a := before[du.u.Id], after[du.u.Id]
		if du.ownManual || du.autoReply || b.Manual && a.Manual {
			continue
		}
		if !a.Manual || (a.Status == model.StatusDnd && a.PrevStatus == model.StatusOffline) {
			// A calstatus run that read the status before the restart may still give the old
			// one back (a DND it set as the server stopped): theirs too.
			du.own, du.alsoOwn = model.StatusOffline, du.own
			if du.guard != nil && du.guard.status != "" {
				du.guard.status = model.StatusOffline
			}
			du.note("%s Mattermost restarted: offline", time.Now().Format("15:04:05"))
		}
	}
}

func (s *soak) azuriteRestart(ctx context.Context) {
	if !s.track.afterTimer(ctx, 200*time.Millisecond) {
		return
	}
	s.faults.azuriteRestarts++
	s.t.Logf("soak: Azurite restarted in %v", restartStack(s.t, "azurite").Round(10*time.Millisecond))
}

// backlog stops the host taking messages for a while: the timer keeps enqueueing cycles, and the
// older shards are stale when they are finally taken.
func (s *soak) backlog(ctx context.Context) {
	s.faults.backlogs++
	during(ctx, 25*time.Second, s.h.host.PauseQueues, s.h.host.ResumeQueues)
}

// killHandler kills the handler process while shards run; the host starts a new one.
func (s *soak) killHandler(ctx context.Context) {
	if !s.track.afterTimer(ctx, 400*time.Millisecond) {
		return
	}
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.h.host.KillHandler(kctx); err != nil {
		s.t.Errorf("killing the handler: %v", err)
		return
	}
	s.faults.kills++
}

// deliveries watches the host: the cycles the timer planned, every delivery of every shard and
// transition message and how it ended; and, while the day lasts, delivers some messages twice — a
// copy at once (two deliveries at the same time) or late (after newer cycles).
type deliveries struct {
	s          *soak
	timerFired chan struct{}
	done       chan struct{}
	stopped    chan struct{}

	mu            sync.Mutex
	shards        []shard.Message      // what the timer planned
	msgs          map[string]*delivery // by queue message id
	peeked        map[string]bool      // message ids already considered for a copy
	dupUntil      time.Time            // no copies after
	copiesNow     int                  // copies enqueued to run beside the original
	copiesLate    int                  // copies enqueued to arrive 3–30 s later
	failed        int                  // failed deliveries (retried or poisoned)
	timerFailures int                  // timer runs the host failed
	poisoned      []string             // message texts moved to the poison queue
	lastErr       map[string]string    // message id → its last failure
}

type delivery struct {
	text       string
	transition bool
	ok         bool
	poisoned   bool
}

func newDeliveries(s *soak) *deliveries {
	return &deliveries{s: s, timerFired: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}),
		msgs: map[string]*delivery{}, peeked: map[string]bool{}, lastErr: map[string]string{}}
}

// run watches the host until stop; it copies messages until dupUntil.
func (d *deliveries) run(ctx context.Context, dupUntil time.Time) {
	d.mu.Lock()
	d.dupUntil = dupUntil
	d.mu.Unlock()
	go d.copyConcurrently(ctx)
	defer close(d.stopped)
	for {
		select {
		case <-d.done:
			return
		case ev := <-d.s.h.host.Events():
			d.event(ev)
		}
	}
}

// stop ends run (after the day: the host is idle, every delivery is in).
func (d *deliveries) stop() {
	close(d.done)
	<-d.stopped
}

func (d *deliveries) event(ev funchost.Event) {
	s := d.s
	for _, line := range ev.Logs {
		s.secrets.scan("invocation logs", line)
	}
	switch ev.Kind {
	case funchost.EventHandlerExit:
		s.t.Errorf("the handler exited by itself: %v", ev.Err)
	case funchost.EventPoison:
		d.mu.Lock()
		if m := d.msgs[ev.MessageID]; m != nil {
			m.poisoned = true
			d.poisoned = append(d.poisoned, m.text)
		}
		d.mu.Unlock()
	case funchost.EventInvocation:
		if ev.Result == nil {
			return
		}
		switch ev.Function {
		case handler.SyncTimerFunction:
			if !ev.OK {
				// The host failed the run (its output could not be enqueued: Azurite restarting) and
				// says so; the next cycle covers these users.
				d.mu.Lock()
				d.timerFailures++
				d.mu.Unlock()
				return
			}
			var msgs []shard.Message
			_ = json.Unmarshal(ev.Result.Outputs[handler.ShardsOutBinding], &msgs)
			for _, m := range msgs {
				b, _ := json.Marshal(m)
				s.secrets.scan("queue messages", string(b))
			}
			d.mu.Lock()
			d.shards = append(d.shards, msgs...)
			d.mu.Unlock()
			select {
			case d.timerFired <- struct{}{}:
			default:
			}
		case handler.SyncShardFunction:
			text := queueText(ev.Result.Request)
			s.secrets.scan("queue messages", text)
			d.mu.Lock()
			m := d.msgs[ev.MessageID]
			if m == nil {
				m = &delivery{text: text}
				if msg, err := shard.Decode([]byte(text)); err == nil {
					m.transition = msg.IsTransition()
				}
				d.msgs[ev.MessageID] = m
			}
			if ev.OK {
				m.ok = true
			} else {
				d.failed++
				if ev.Err != nil {
					d.lastErr[ev.MessageID] = ev.Err.Error()
				}
			}
			late := ev.OK && time.Now().Before(d.dupUntil) && rand.IntN(100) < 15
			if late {
				d.copiesLate++
			}
			d.mu.Unlock()
			if late {
				d.enqueue(text, time.Duration(3+rand.IntN(28))*time.Second)
			}
		}
	}
}

// copyConcurrently peeks at the queue and, for about a third of the messages waiting, enqueues a
// copy at once: the host then runs both at the same time.
func (d *deliveries) copyConcurrently(ctx context.Context) {
	qc := d.s.h.queue.NewQueueClient(handler.ShardQueue)
	n := int32(32)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := qc.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: &n})
		if err != nil {
			continue // Azurite restarting
		}
		for _, m := range resp.Messages {
			if m.MessageID == nil || m.MessageText == nil {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(*m.MessageText)
			if err != nil {
				raw = []byte(*m.MessageText)
			}
			d.s.secrets.scan("queue messages", string(raw))
			d.mu.Lock()
			copyNow := !d.peeked[*m.MessageID] && time.Now().Before(d.dupUntil) && rand.IntN(100) < 30
			d.peeked[*m.MessageID] = true
			if copyNow {
				d.copiesNow++
			}
			d.mu.Unlock()
			if copyNow {
				d.enqueue(string(raw), 0)
			}
		}
	}
}

// enqueue adds a copy of a message, visible after delay.
func (d *deliveries) enqueue(text string, delay time.Duration) {
	secs := int32(delay / time.Second)
	qc := d.s.h.queue.NewQueueClient(handler.ShardQueue)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := qc.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(text)), &azqueue.EnqueueMessageOptions{VisibilityTimeout: &secs}); err != nil {
		d.s.t.Logf("soak: copying a message: %v (Azurite restarting?)", err)
	}
}

// afterTimer waits for the timer's next run, then for delay: shards are under way then.
func (d *deliveries) afterTimer(ctx context.Context, delay time.Duration) bool {
	select {
	case <-d.timerFired: // an earlier run: not this one
	default:
	}
	select {
	case <-ctx.Done():
		return false
	case <-d.timerFired:
	}
	time.Sleep(delay)
	return ctx.Err() == nil
}

// queueText is the message text of a SyncShard invocation the host sent ("" if it has none).
func queueText(request []byte) string {
	inv, err := azfunc.DecodeInvocation(bytes.NewReader(request))
	if err != nil {
		return ""
	}
	m, err := inv.QueueMessage(handler.ShardTriggerBinding)
	if err != nil {
		return ""
	}
	return string(m.Body)
}
