package genai

import (
	"context"
	"sync/atomic"

	"github.com/inferbox/inferbox/internal/pool"
)

// Fairness between interactive and low-priority (batch) generations.
//
// The pool's wait queue already hands a free slot to an interactive waiter
// before any low-priority one, whatever their arrival order. That alone
// does not keep a batch backlog from starving interactive traffic: batch
// generations that hold every slot make an interactive request wait for one
// of them to finish (a whole generation), and low-priority waiters count
// against the pool's queue limit, so a large enough backlog would have
// interactive requests refused as ErrQueueFull.
//
// So low-priority generations pass a gate first: at most lowLimit of them
// hold or wait for a model's pool slots at once; the rest wait in the gate,
// outside the pool's queue, for as long as their context allows (a batch
// record has no queue timeout). The slots the gate keeps back are free for
// interactive requests the moment they arrive.

// lowPriorityLimit is how many low-priority generations may hold or wait
// for slots of a pool with the given per-instance concurrency and instance
// cap: every slot but a quarter (at least one) kept for interactive
// requests. A pool of a single slot cannot keep one back; there the wait
// queue's order is the only protection.
func lowPriorityLimit(concurrency, maxInstances int) int {
	slots := max(concurrency, 1) * max(maxInstances, 1)
	reserve := max(1, slots/4)
	return max(1, slots-reserve)
}

// lowGate is a counting semaphore for low-priority generations. Blocked
// senders on a channel are served in arrival order, so the backlog drains
// first come, first served.
type lowGate struct {
	slots   chan struct{}
	waiting atomic.Int64 // generations blocked in enter
}

func newLowGate(n int) *lowGate { return &lowGate{slots: make(chan struct{}, max(n, 1))} }

// enter waits for a place for a generation of priority prio and returns the
// function that gives it back. Interactive (and higher) priorities pass at
// once.
func (g *lowGate) enter(ctx context.Context, prio pool.Priority) (leave func(), err error) {
	if prio >= pool.Normal {
		return func() {}, nil
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
