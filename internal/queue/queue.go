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
)

// MaxDelay is Azure Queue storage's limit on a message's initial invisibility.
const MaxDelay = 7 * 24 * time.Hour

// Queue is one storage queue.
type Queue struct {
	client *azqueue.QueueClient
	name   string
}

// Open returns the named queue of the storage account in connectionString, creating it if needed.
func Open(ctx context.Context, connectionString, name string) (*Queue, error) {
	svc, err := azqueue.NewServiceClientFromConnectionString(connectionString, nil)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", name, err)
	}
	q := &Queue{client: svc.NewQueueClient(name), name: name}
	if _, err := q.client.Create(ctx, nil); err != nil && !isExists(err) {
		return nil, fmt.Errorf("queue %s: creating: %w", name, err)
	}
	return q, nil
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
