package funchost

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"
)

// maxMessageBytes is Azure Storage's limit on a message (after encoding).
const maxMessageBytes = 64 * 1024

// queueLease is how long a dequeued message stays invisible while the
// function runs (QueueSettings.Lease); the lease is renewed at half-time, like the host does.
const queueLease = 10 * time.Minute

type storageClients struct {
	mu       sync.Mutex
	services map[string]*azqueue.ServiceClient
	created  map[string]bool
}

func newStorageClients() *storageClients {
	return &storageClients{services: map[string]*azqueue.ServiceClient{}, created: map[string]bool{}}
}

func (s *storageClients) service(connStr string) (*azqueue.ServiceClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.services[connStr]; c != nil {
		return c, nil
	}
	opts := &azqueue.ClientOptions{}
	// As the host's storage client retries (Azure.Core's defaults: 3 retries, 0.8 s doubling): a
	// storage blip of a few seconds loses no delete or release of a message.
	opts.Retry = policy.RetryOptions{MaxRetries: 3, RetryDelay: 800 * time.Millisecond, MaxRetryDelay: time.Minute, TryTimeout: 30 * time.Second}
	c, err := azqueue.NewServiceClientFromConnectionString(connStr, opts)
	if err != nil {
		return nil, fmt.Errorf("storage connection string: %w", err)
	}
	s.services[connStr] = c
	return c, nil
}

func (s *storageClients) queue(connStr, name string) (*azqueue.QueueClient, error) {
	svc, err := s.service(connStr)
	if err != nil {
		return nil, err
	}
	return svc.NewQueueClient(name), nil
}

// ensureQueue creates the queue once per host (CreateIfNotExists).
func (s *storageClients) ensureQueue(ctx context.Context, connStr, name string) (*azqueue.QueueClient, error) {
	qc, err := s.queue(connStr, name)
	if err != nil {
		return nil, err
	}
	key := connStr + "\x00" + name
	s.mu.Lock()
	done := s.created[key]
	s.mu.Unlock()
	if !done {
		if _, err := qc.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
			return nil, fmt.Errorf("creating queue '%s': %w", name, err)
		}
		s.mu.Lock()
		s.created[key] = true
		s.mu.Unlock()
	}
	return qc, nil
}

func isQueueNotFound(err error) bool { return queueerror.HasCode(err, queueerror.QueueNotFound) }

func (h *Host) encodeMessage(b []byte) string {
	if h.cfg.Queues.MessageEncoding == "base64" {
		return base64.StdEncoding.EncodeToString(b)
	}
	return string(b)
}

func (h *Host) decodeMessage(raw string) ([]byte, error) {
	if h.cfg.Queues.MessageEncoding != "base64" || raw == "" {
		return []byte(raw), nil
	}
	b, ok := dotnetBase64(raw)
	if !ok {
		return nil, fmt.Errorf("the message is not valid base64 but messageEncoding is base64")
	}
	return b, nil
}

// enqueue writes messages (payload bytes, encoded per messageEncoding) and
// wakes local listeners of that queue, like the host's shared queue watcher.
func (h *Host) enqueue(ctx context.Context, connStr, queue string, msgs [][]byte) error {
	qc, err := h.storage.ensureQueue(ctx, connStr, queue)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		text := h.encodeMessage(m)
		if len(text) > maxMessageBytes {
			return fmt.Errorf("message of %d bytes (after %s encoding) exceeds the queue limit of %d bytes", len(text), h.cfg.Queues.MessageEncoding, maxMessageBytes)
		}
		if _, err := qc.EnqueueMessage(ctx, text, nil); err != nil {
			return err
		}
	}
	h.notifyQueue(connStr, queue)
	return nil
}

func (h *Host) notifyQueue(connStr, queue string) {
	for _, l := range h.listeners {
		if l.queue == queue && l.fn.trigger.connStr == connStr {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}
}

// queueListener polls one queue for one function like the queue extension's
// QueueListener: batches of batchSize, processed concurrently, a new batch
// when in-flight drops to newBatchThreshold, randomized exponential backoff
// up to maxPollingInterval when the queue is empty.
type queueListener struct {
	h        *Host
	fn       *function
	queue    string
	poison   string
	connStr  string
	qc       *azqueue.QueueClient
	set      QueueSettings
	wake     chan struct{}
	done     chan struct{}
	inflight atomic.Int64
}

func (h *Host) newQueueListener(fn *function) (*queueListener, error) {
	qc, err := h.storage.queue(fn.trigger.connStr, fn.Queue)
	if err != nil {
		return nil, err
	}
	return &queueListener{
		h: h, fn: fn, queue: fn.Queue, poison: fn.Queue + "-poison", connStr: fn.trigger.connStr, qc: qc,
		set: h.cfg.Queues, wake: make(chan struct{}, 1), done: make(chan struct{}, 1),
	}, nil
}

func (l *queueListener) run() {
	h := l.h
	defer h.bg.Done()
	ctx := h.pollCtx
	minDelay := min(minPollingInterval, l.set.MaxPollingInterval)
	delay := minDelay
	lastErr := ""
	missingLogged := false
	n := int32(l.set.BatchSize)
	lease := int32(l.set.Lease / time.Second)
	for {
		if ctx.Err() != nil {
			return
		}
		h.queueMu.RLock()
		if p := h.paused; p != nil {
			h.queueMu.RUnlock()
			select {
			case <-p:
				delay = minDelay
				continue
			case <-ctx.Done():
				return
			}
		}
		resp, err := l.qc.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n, VisibilityTimeout: &lease})
		h.queueMu.RUnlock()
		var msgs []*azqueue.DequeuedMessage
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && isQueueNotFound(err):
			if !missingLogged {
				h.logf("funchost: %s: queue '%s' does not exist yet; polling until it does", l.fn.Name, l.queue)
				missingLogged = true
			}
		case err != nil:
			if msg := err.Error(); msg != lastErr {
				h.logf("funchost: ERROR %s: polling queue '%s': %v", l.fn.Name, l.queue, err)
				lastErr = msg
			}
		default:
			if lastErr != "" {
				h.logf("funchost: %s: polling queue '%s' works again", l.fn.Name, l.queue)
				lastErr = ""
			}
			missingLogged = false
			msgs = resp.Messages
		}
		if len(msgs) > 0 {
			for _, m := range msgs {
				if m == nil || m.MessageID == nil || m.PopReceipt == nil {
					continue
				}
				l.inflight.Add(1)
				h.bg.Add(1)
				go l.process(m)
			}
			for l.inflight.Load() > int64(l.set.NewBatchThreshold) {
				select {
				case <-l.done:
				case <-ctx.Done():
					return
				}
			}
			delay = minDelay
			continue
		}
		// Empty (or failing) queue: back off, randomized ±20%.
		d := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.wake:
			t.Stop()
			delay = minDelay
		case <-t.C:
			delay = min(delay*2, l.set.MaxPollingInterval)
		}
	}
}

// messageLease tracks the pop receipt, which changes on every update.
type messageLease struct {
	mu  sync.Mutex
	pop string
}

func (l *queueListener) process(m *azqueue.DequeuedMessage) {
	h := l.h
	defer func() {
		l.inflight.Add(-1)
		select {
		case l.done <- struct{}{}:
		default:
		}
		h.bg.Done()
	}()
	id := *m.MessageID
	raw := ""
	if m.MessageText != nil {
		raw = *m.MessageText
	}
	var dc int64
	if m.DequeueCount != nil {
		dc = *m.DequeueCount
	}
	lease := &messageLease{pop: *m.PopReceipt}
	finalCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(h.invCtx), 30*time.Second)
	}

	// A message dequeued more often than allowed (e.g. the host died while
	// processing it) goes straight to the poison queue.
	if dc > int64(l.set.MaxDequeueCount) {
		ctx, cancel := finalCtx()
		l.poisonMessage(ctx, id, raw, dc, lease.pop, "")
		cancel()
		return
	}
	body, err := h.decodeMessage(raw)
	if err != nil {
		// The queue extension's MessageDecodingFailed handler moves such a
		// message to the poison queue without invoking the function.
		h.logf("funchost: ERROR %s: message %s on '%s' could not be decoded (%v); check extensions.queues.messageEncoding. Moving it to the poison queue.", l.fn.Name, id, l.queue, err)
		ctx, cancel := finalCtx()
		l.poisonMessage(ctx, id, raw, dc, lease.pop, "")
		cancel()
		return
	}

	// Renew the lease while the function runs.
	stopRenew := make(chan struct{})
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(l.set.Lease / 2)
		defer t.Stop()
		for {
			select {
			case <-stopRenew:
				return
			case <-t.C:
				lease.mu.Lock()
				vis := int32(l.set.Lease / time.Second)
				resp, err := l.qc.UpdateMessage(context.WithoutCancel(h.invCtx), id, lease.pop, raw, &azqueue.UpdateMessageOptions{VisibilityTimeout: &vis})
				if err == nil && resp.PopReceipt != nil {
					lease.pop = *resp.PopReceipt
				} else if err != nil {
					h.logf("funchost: WARNING %s: renewing the lease of message %s: %v", l.fn.Name, id, err)
				}
				lease.mu.Unlock()
			}
		}
	}()

	meta := map[string]any{
		"DequeueCount": doubleEncode(dc),
		"Id":           doubleEncode(id),
		"PopReceipt":   doubleEncode(*m.PopReceipt),
	}
	if m.InsertionTime != nil {
		meta["InsertionTime"] = doubleEncode(netDate(m.InsertionTime.UTC()))
	}
	if m.ExpirationTime != nil {
		meta["ExpirationTime"] = doubleEncode(netDate(m.ExpirationTime.UTC()))
	}
	if m.TimeNextVisible != nil {
		meta["NextVisibleTime"] = doubleEncode(netDate(m.TimeNextVisible.UTC()))
	}
	data := map[string]any{l.fn.trigger.Name: queueTriggerValue(l.fn, body)}
	res := h.invoke(h.invCtx, l.fn, invocationInput{
		data: data, metadata: meta,
		reason: fmt.Sprintf("New queue message detected on '%s'.", l.queue),
		queue:  l.queue, messageID: id, dequeueCount: dc,
	})
	close(stopRenew)
	<-renewDone

	ctx, cancel := finalCtx()
	defer cancel()
	switch {
	case res.OK:
		if _, err := l.qc.DeleteMessage(ctx, id, lease.pop, nil); err != nil {
			h.logf("funchost: ERROR %s: deleting message %s after success: %v (it will be processed again)", l.fn.Name, id, err)
		}
	case dc >= int64(l.set.MaxDequeueCount):
		l.poisonMessage(ctx, id, raw, dc, lease.pop, res.InvocationID)
	default:
		vis := int32(l.set.VisibilityTimeout / time.Second)
		if _, err := l.qc.UpdateMessage(ctx, id, lease.pop, raw, &azqueue.UpdateMessageOptions{VisibilityTimeout: &vis}); err != nil {
			h.logf("funchost: ERROR %s: releasing message %s for retry: %v", l.fn.Name, id, err)
		}
		h.logf("funchost: %s: message %s failed (dequeue count %d of %d); it becomes visible again in %s", l.fn.Name, id, dc, l.set.MaxDequeueCount, l.set.VisibilityTimeout)
		h.emit(Event{Kind: EventRetry, Function: l.fn.Name, InvocationID: res.InvocationID, Queue: l.queue, MessageID: id, DequeueCount: dc, Err: res.Err})
	}
}

// poisonMessage copies the message text, exactly as stored, to
// <queue>-poison (creating it) and deletes the original.
func (l *queueListener) poisonMessage(ctx context.Context, id, raw string, dc int64, pop, invocationID string) {
	h := l.h
	h.logf("funchost: %s: Message has reached MaxDequeueCount of %d. Moving message to queue '%s'. (message %s, dequeue count %d)", l.fn.Name, l.set.MaxDequeueCount, l.poison, id, dc)
	pq, err := h.storage.ensureQueue(ctx, l.connStr, l.poison)
	if err == nil {
		_, err = pq.EnqueueMessage(ctx, raw, nil)
	}
	if err != nil {
		h.logf("funchost: ERROR %s: moving message %s to '%s': %v", l.fn.Name, id, l.poison, err)
		return
	}
	h.notifyQueue(l.connStr, l.poison)
	if _, err := l.qc.DeleteMessage(ctx, id, pop, nil); err != nil {
		h.logf("funchost: ERROR %s: deleting poisoned message %s: %v", l.fn.Name, id, err)
	}
	h.emit(Event{Kind: EventPoison, Function: l.fn.Name, InvocationID: invocationID, Queue: l.queue, MessageID: id, DequeueCount: dc})
}
