package genai

import (
	"context"
	"sync"
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

// Holding slots back is not enough on an engine that decodes a model's
// generations together: the batch generations in flight share every
// decode step with the interactive one and slow it down in proportion. So
// a low-priority generation also yields: before each of its tokens it
// waits while any interactive generation of the model is running (holds a
// slot), and picks up where it stopped when none is. Waiting interactive
// requests do not pause it — on a pool of one slot the batch generation
// holding it must finish for them to run. Batch work thus gets the
// capacity interactive traffic leaves idle; under unbroken interactive
// load it waits (with its KV cache kept) for as long as its context lets it.

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
	paused  atomic.Int64 // low-priority generations paused in yield

	mu      sync.Mutex
	running int           // interactive generations holding a slot
	resume  chan struct{} // closed when running drops to zero
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

// interactiveStarted counts an interactive generation as running until the
// returned function is called.
func (g *lowGate) interactiveStarted() (done func()) {
	g.mu.Lock()
	if g.running == 0 {
		g.resume = make(chan struct{})
	}
	g.running++
	g.mu.Unlock()
	return sync.OnceFunc(func() {
		g.mu.Lock()
		g.running--
		if g.running == 0 {
			close(g.resume)
		}
		g.mu.Unlock()
	})
}

// yield waits while an interactive generation is running; a low-priority
// generation calls it before each token.
func (g *lowGate) yield(ctx context.Context) error {
	g.mu.Lock()
	if g.running == 0 {
		g.mu.Unlock()
		return nil
	}
	ch := g.resume
	g.mu.Unlock()
	g.paused.Add(1)
	defer g.paused.Add(-1)
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
