// Package queue is inferbox's durable work queue: named topics of opaque
// messages with at-least-once delivery, leases, ack/nack and bounded
// redelivery, stored in NATS JetStream — a server embedded in the process
// (file storage under the data directory) by default, or an external NATS
// server or cluster by URL, with the same code.
//
// queue knows nothing of endpoints, models or HTTP; the mode services
// (async, batch) build on it. It must not import them, nor any adapter.
package queue

import (
	"context"
	"errors"
	"time"
)

// Queue is durable work, by topic. Its semantics, which every
// implementation keeps:
//
//   - Enqueue returns only once the message is stored durably (a process
//     crash after it returns loses nothing). A message whose id was
//     enqueued in the last few minutes is stored once (de-duplication
//     window); the id travels with the message.
//   - Next hands a message to one consumer at a time under a lease (the
//     ack wait). The consumer must Ack it when done; Nack returns it for
//     redelivery after a delay; InProgress extends the lease while the
//     work runs. A message whose lease lapses (its consumer crashed or
//     hung) is delivered again: delivery is at least once, so consumers
//     make their effects idempotent (overwrite by id).
//   - Redelivery is bounded: the delivery after the MaxDeliver-th is
//     handed out once more with Exhausted set, and the consumer records
//     the failure (dead letter) and Acks it instead of running it again.
//     A consumer that cannot record the failure either Terms the message:
//     it is removed without being delivered again.
//   - Depth tells how many messages of a topic are stored (waiting or
//     leased) and when the oldest was enqueued.
type Queue interface {
	Enqueue(ctx context.Context, topic, id string, body []byte) error
	Next(ctx context.Context, topic string) (Delivery, error)
	Depth(ctx context.Context, topic string) (Depth, error)
}

// Delivery is one message handed to a consumer under a lease.
type Delivery interface {
	ID() string
	Body() []byte
	// Attempt counts deliveries of this message, from 1.
	Attempt() int
	// Exhausted is set on the delivery after the MaxDeliver-th: the
	// consumer must not run the work again, only record its failure.
	Exhausted() bool
	// Enqueued is when the message was stored.
	Enqueued() time.Time
	// Ack removes the message for good; it returns once the store has it.
	Ack(ctx context.Context) error
	// Nack ends the lease; the message is delivered again after delay.
	Nack(ctx context.Context, delay time.Duration) error
	// InProgress extends the lease by another ack wait.
	InProgress(ctx context.Context) error
	// Term removes the message for good without it having been done:
	// it is never delivered again. The reason is kept by the store where
	// it can (a JetStream advisory).
	Term(ctx context.Context, reason string) error
}

// Depth is a topic's backlog.
type Depth struct {
	Messages int       // stored: waiting or leased
	Oldest   time.Time // when the oldest stored message was enqueued; zero if none
}

// ErrClosed is returned once the queue is closed.
var ErrClosed = errors.New("queue: closed")
