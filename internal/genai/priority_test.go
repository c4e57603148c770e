package genai

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

func TestLowPriorityLimit(t *testing.T) {
	for _, c := range []struct{ conc, inst, want int }{
		{1, 1, 1}, {2, 1, 1}, {4, 1, 3}, {4, 2, 6}, {8, 1, 6}, {0, 0, 1},
	} {
		if got := lowPriorityLimit(c.conc, c.inst); got != c.want {
			t.Errorf("lowPriorityLimit(%d, %d) = %d, want %d", c.conc, c.inst, got, c.want)
		}
	}
}

// order records which generations started, in the order their first
// piece of text arrived.
type order struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
}

// holder makes the generations it is given hold their slot after their
// first piece of text until release is closed.
type holder struct {
	started chan string   // each held generation's name, once
	release chan struct{} // closed by let
	let     func()
}

// newHolder returns a holder that lets its generations go at the latest
// when the test ends (before the service closes), so a failing test does
// not hang.
func newHolder(t *testing.T) *holder {
	h := &holder{started: make(chan string, 64), release: make(chan struct{})}
	h.let = sync.OnceFunc(func() { close(h.release) })
	t.Cleanup(h.let)
	return h
}

func (o *order) emit(name string, h *holder) func(string) error {
	return func(string) error {
		o.mu.Lock()
		first := !o.seen[name]
		if first {
			o.seen[name] = true
			o.list = append(o.list, name)
		}
		o.mu.Unlock()
		if first && h != nil {
			h.started <- name
			<-h.release
		}
		return nil
	}
}

func (o *order) started(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[name]
}

// TestInteractiveBeforeEarlierBatch: on a pool of one slot held by a
// batch generation, with a batch backlog queued first, every interactive
// request that arrives later is served before any of that backlog.
func TestInteractiveBeforeEarlierBatch(t *testing.T) {
	s := newStories(t, Config{Concurrency: 1, MaxInstances: 1})
	m := s.models["meta.stories"]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := &order{seen: map[string]bool{}}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	run := func(name string, prio pool.Priority, h *holder) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Generate(ctx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time",
				Params: llama.Params{MaxTokens: 4}, Priority: prio}, o.emit(name, h))
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	hold := newHolder(t)
	run("batch-0", pool.Low, hold)
	<-hold.started // batch-0 holds the only slot
	const backlog, interactive = 12, 5
	for i := 1; i <= backlog; i++ {
		run(fmt.Sprintf("batch-%d", i), pool.Low, nil)
	}
	waitUntil(t, "the batch backlog to wait", func() bool { return m.low.waiting.Load() == backlog })
	for i := range interactive {
		run(fmt.Sprintf("chat-%d", i), pool.Normal, nil)
	}
	waitUntil(t, "the interactive requests to queue", func() bool { return m.pool.Snapshot().Queued == interactive })
	hold.let() // let batch-0 finish
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(o.list) != 1+backlog+interactive {
		t.Fatalf("started %d generations: %v", len(o.list), o.list)
	}
	for i, name := range o.list[1 : 1+interactive] {
		if name[:4] != "chat" {
			t.Fatalf("position %d went to %s before every interactive request: %v", i+1, name, o.list)
		}
	}
}

// TestBatchBacklogLeavesInteractiveSlot: a batch backlog whose
// generations never finish cannot hold every slot; an interactive request
// runs to completion beside them, and the backlog waits outside the pool's
// queue (so it cannot fill the queue limit either).
func TestBatchBacklogLeavesInteractiveSlot(t *testing.T) {
	s := newStories(t, Config{Concurrency: 2, MaxInstances: 1})
	m := s.models["meta.stories"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := &order{seen: map[string]bool{}}
	var wg sync.WaitGroup
	hold := newHolder(t)
	const backlog = 20
	for i := range backlog {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.Generate(ctx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time",
				Params: llama.Params{MaxTokens: 4}, Priority: pool.Low}, o.emit(fmt.Sprintf("batch-%d", i), hold))
		}()
	}
	<-hold.started // one batch generation holds a slot until the end
	waitUntil(t, "the rest of the backlog to wait", func() bool {
		st := m.pool.Snapshot()
		return int(m.low.waiting.Load())+st.Queued+st.InFlight == backlog
	})
	if q := m.pool.Snapshot().Queued; q != 0 {
		t.Errorf("%d batch generations in the pool's queue, want 0", q)
	}
	ictx, icancel := context.WithTimeout(ctx, 20*time.Second)
	defer icancel()
	res, err := s.Generate(ictx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time",
		Params: llama.Params{MaxTokens: 8}}, o.emit("chat", nil))
	if err != nil {
		t.Fatalf("interactive request beside a stuck batch backlog: %v", err)
	}
	if res.OutputTokens != 8 || !o.started("chat") {
		t.Errorf("result %+v", res)
	}
	cancel()
	hold.let()
	wg.Wait()
}

// TestBatchYieldsToRunningInteractive: a batch generation emits nothing
// while an interactive generation runs beside it, and goes on when it ends.
func TestBatchYieldsToRunningInteractive(t *testing.T) {
	s := newStories(t, Config{Concurrency: 2, MaxInstances: 1})
	m := s.models["meta.stories"]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := &order{seen: map[string]bool{}}
	hold := newHolder(t)
	// Every token of either generation, in the order they were emitted: the
	// batch generation's first token must come after the chat's last one.
	var tokens []string
	logged := func(name string, emit func(string) error) func(string) error {
		return func(text string) error {
			err := emit(text)
			o.mu.Lock()
			tokens = append(tokens, name)
			o.mu.Unlock()
			return err
		}
	}
	chatDone := make(chan error, 1)
	go func() {
		_, err := s.Generate(ctx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time",
			Params: llama.Params{MaxTokens: 4}}, logged("chat", o.emit("chat", hold)))
		chatDone <- err
	}()
	<-hold.started // the interactive generation runs (held in its first token)
	batchDone := make(chan error, 1)
	go func() {
		_, err := s.Generate(ctx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time",
			Params: llama.Params{MaxTokens: 4}, Priority: pool.Low}, logged("batch", o.emit("batch", nil)))
		batchDone <- err
	}()
	waitUntil(t, "the batch generation to pause", func() bool { return m.low.paused.Load() == 1 })
	hold.let()
	if err := <-chatDone; err != nil {
		t.Fatal(err)
	}
	if err := <-batchDone; err != nil {
		t.Fatal(err)
	}
	lastChat, firstBatch := -1, -1
	for i, name := range tokens {
		if name == "chat" {
			lastChat = i
		} else if firstBatch < 0 {
			firstBatch = i
		}
	}
	if firstBatch < 0 || lastChat < 0 || firstBatch < lastChat {
		t.Errorf("tokens in order %v: the batch generation emitted while the interactive one was running", tokens)
	}
}
