package pool

import "container/heap"

type grant struct {
	in  *instance
	err error
}

// waiter is one invocation waiting for a slot. ch has room for one grant so
// the pool never blocks handing it over.
type waiter struct {
	prio  Priority
	seq   uint64
	index int
	ch    chan grant
}

// waitQueue orders waiters by priority, then arrival. Not safe for
// concurrent use; the pool's mutex guards it.
type waitQueue struct {
	h   waitHeap
	seq uint64
}

func (q *waitQueue) len() int { return len(q.h) }

func (q *waitQueue) push(prio Priority) *waiter {
	q.seq++
	w := &waiter{prio: prio, seq: q.seq, ch: make(chan grant, 1)}
	heap.Push(&q.h, w)
	return w
}

func (q *waitQueue) pop() *waiter { return heap.Pop(&q.h).(*waiter) }

// remove takes w out of the queue; false if it was already popped.
func (q *waitQueue) remove(w *waiter) bool {
	if w.index < 0 || w.index >= len(q.h) || q.h[w.index] != w {
		return false
	}
	heap.Remove(&q.h, w.index)
	return true
}

func (q *waitQueue) failAll(err error) {
	for len(q.h) > 0 {
		q.pop().ch <- grant{err: err}
	}
}

type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].seq < h[j].seq
}
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	w.index = -1
	*h = old[:len(old)-1]
	return w
}
