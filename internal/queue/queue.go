// Package queue writes messages the queue trigger will pick up later: a message with an initial
// visibility delay becomes visible at a chosen time, which is how calstatus applies a meeting's
// start or end on time between two sync cycles.
package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/calstatus/calstatus/internal/azstorage"
)

// MaxDelay is Azure Queue storage's limit on a message's initial invisibility.
const MaxDelay = 7 * 24 * time.Hour

// Queue is one storage queue and its poison queue.
type Queue struct {
	client, poison *azqueue.QueueClient
	name           string
}

// PoisonName is the queue the Functions host moves a message to after its last failed delivery.
func PoisonName(name string) string { return name + "-poison" }

// Open returns the named queue of the storage account, creating it (and its poison queue, which
// the host creates only on the first poison message) if needed.
func Open(ctx context.Context, account azstorage.Account, name string) (*Queue, error) {
	svc, err := account.Queues()
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", name, err)
	}
	q := &Queue{client: svc.NewQueueClient(name), poison: svc.NewQueueClient(PoisonName(name)), name: name}
	for _, c := range []*azqueue.QueueClient{q.client, q.poison} {
		if _, err := c.Create(ctx, nil); err != nil && !isExists(err) {
			return nil, fmt.Errorf("queue %s: creating: %w", name, err)
		}
	}
	return q, nil
}

// Health is what an on-call admin needs of the queue: how much waits, for how long, and how many
// messages failed every delivery.
type Health struct {
	// Depth and PoisonDepth are approximate message counts (delayed transitions included).
	Depth, PoisonDepth int
	// OldestAge is how long the oldest message that is due has waited (0 when none is).
	OldestAge time.Duration
}

// Health measures the queue (storage metrics are per account, not per queue).
func (q *Queue) Health(ctx context.Context, now time.Time) (Health, error) {
	var h Health
	for _, c := range []struct {
		client *azqueue.QueueClient
		n      *int
	}{{q.client, &h.Depth}, {q.poison, &h.PoisonDepth}} {
		props, err := c.client.GetProperties(ctx, nil)
		if err != nil {
			return h, fmt.Errorf("queue %s: %w", q.name, err)
		}
		if props.ApproximateMessagesCount != nil {
			*c.n = int(*props.ApproximateMessagesCount)
		}
	}
	one := int32(1)
	peek, err := q.client.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: &one})
	if err != nil {
		return h, fmt.Errorf("queue %s: %w", q.name, err)
	}
	if len(peek.Messages) > 0 && peek.Messages[0].InsertionTime != nil {
		h.OldestAge = max(0, now.Sub(*peek.Messages[0].InsertionTime))
	}
	return h, nil
}

func isExists(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && (re.ErrorCode == "QueueAlreadyExists" || re.StatusCode == http.StatusConflict)
}

// SendLater enqueues v as JSON so that it becomes visible after delay (rounded up to a second, so
// never early). The text is base64-encoded, matching host.json's queues.messageEncoding.
func (q *Queue) SendLater(ctx context.Context, v any, delay time.Duration) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if delay < 0 {
		delay = 0
	}
	if delay > MaxDelay {
		return fmt.Errorf("queue %s: delay %v exceeds %v", q.name, delay, MaxDelay)
	}
	secs := int32(math.Ceil(delay.Seconds()))
	_, err = q.client.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString(body), &azqueue.EnqueueMessageOptions{VisibilityTimeout: &secs})
	if err != nil {
		return fmt.Errorf("queue %s: %w", q.name, err)
	}
	return nil
}
