package llama

import "sync"

// prefillChunk bounds the prompt positions one sequence puts in one batch,
// so a long prompt does not hold up the sequences decoding beside it for
// long, and bounds the scratch memory. Each chunk reads every weight once
// from memory, so larger chunks prefill faster (TinyLlama-shape Q4_K, 512
// tokens, one thread: 4.71-4.75 CPU-s with 64, 4.41-4.58 with 128).
const prefillChunk = 128

// batcher decodes the model's concurrent generations together (continuous
// batching): each generation submits its next step (one token, or a chunk
// of its prompt) and waits; one of the waiting goroutines becomes the
// leader, takes every queued step and runs them as one batch, so each
// weight matrix is read once for all of them. There is no goroutine of its
// own: the leader is always a caller, which gets its own result too.
//
// To let steps meet in one batch, the leader waits while any generation is
// "busy" — computing between two steps (sampling), which is short and
// bounded. A generation inside its emit callback (writing to a slow
// client) is not busy, so it never holds up the others.
type batcher struct {
	m       *Model
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*step
	running bool
	busy    int // generations between steps that will submit soon
	sc      scratch
}

// step is one generation's work for one batch.
type step struct {
	s      *seqState
	tokens []int
	logits bool // logits after the last token
	done   bool
}

func newBatcher(m *Model) *batcher {
	b := &batcher{m: m}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// join registers a generation that is about to submit; leave, its end.
// Between them the generation is busy except inside away/back.
func (b *batcher) join() {
	b.mu.Lock()
	b.busy++
	b.mu.Unlock()
}

func (b *batcher) leave() { b.away() }

// away marks the generation as not about to submit (it is emitting a
// token); back, as busy again.
func (b *batcher) away() {
	b.mu.Lock()
	b.busy--
	if b.busy == 0 {
		b.cond.Broadcast()
	}
	b.mu.Unlock()
}

func (b *batcher) back() { b.join() }

// run submits st and returns when it has been computed. The caller must
// be busy (joined, not away); it is busy again on return.
func (b *batcher) run(st *step) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, st)
	b.busy--
	for !st.done {
		if b.running || b.busy > 0 {
			b.cond.Wait()
			continue
		}
		batch := b.queue
		b.queue = nil
		b.running = true
		b.mu.Unlock()
		b.m.forwardBatch(&b.sc, itemsOf(batch))
		b.mu.Lock()
		for _, d := range batch {
			d.done = true
			b.busy++
		}
		b.running = false
		b.cond.Broadcast()
	}
}

func itemsOf(batch []*step) []item {
	var items []item
	for _, st := range batch {
		pos := st.s.pos
		for i, tok := range st.tokens {
			items = append(items, item{s: st.s, tok: tok, pos: pos + i, logits: st.logits && i == len(st.tokens)-1})
		}
	}
	return items
}
