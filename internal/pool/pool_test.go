package pool

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/runtime"
)

// gateModel answers once its gate channel lets it, so tests control when
// invocations finish without sleeping.
type gateModel struct {
	id     string
	gate   chan struct{}
	calls  atomic.Int64
	closed atomic.Bool
}

func (m *gateModel) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	m.calls.Add(1)
	select {
	case <-m.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &runtime.Response{Body: io.NopCloser(strings.NewReader(m.id))}, nil
}

func (m *gateModel) Close() error { m.closed.Store(true); return nil }

type fleet struct {
	mu       sync.Mutex
	models   []*gateModel
	released atomic.Int64
	gate     chan struct{}
	fail     error
}

func (f *fleet) start(ctx context.Context, id string) (runtime.Model, func(), error) {
	if f.fail != nil {
		return nil, nil, f.fail
	}
	m := &gateModel{id: id, gate: f.gate}
	f.mu.Lock()
	f.models = append(f.models, m)
	f.mu.Unlock()
	return m, func() { f.released.Add(1) }, nil
}

func newFleet() *fleet { return &fleet{gate: make(chan struct{})} }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestResizeAndRouteLeastOutstanding(t *testing.T) {
	f := newFleet()
	p := New(Config{Name: "t", Start: f.start, Concurrency: 2})
	ctx := context.Background()
	if err := p.Resize(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got := p.Size(); got != 3 {
		t.Fatalf("Size = %d, want 3", got)
	}
	// Six invocations fill 3 instances × 2 slots, spread one per instance first.
	results := make(chan string, 6)
	for range 6 {
		go func() {
			res, err := p.Invoke(ctx, &runtime.Request{}, Normal)
			if err != nil {
				results <- "err: " + err.Error()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			results <- string(b)
		}()
	}
	waitFor(t, "6 in flight", func() bool { return p.Snapshot().InFlight == 6 })
	for _, m := range f.models {
		if n := m.calls.Load(); n != 2 {
			t.Errorf("instance %s got %d calls, want 2 (least outstanding)", m.id, n)
		}
	}
	// A seventh waits in the queue.
	go func() {
		res, err := p.Invoke(ctx, &runtime.Request{}, Normal)
		if err == nil {
			res.Body.Close()
		}
		results <- "7th"
	}()
	waitFor(t, "one queued", func() bool { return p.Snapshot().Queued == 1 })
	close(f.gate)
	for range 7 {
		if r := <-results; strings.HasPrefix(r, "err") {
			t.Fatal(r)
		}
	}
	s := p.Snapshot()
	if s.Invocations != 7 || s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("stats after = %+v", s)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if f.released.Load() != 3 {
		t.Fatalf("released %d instances, want 3", f.released.Load())
	}
}

func TestQueueFullAndTimeout(t *testing.T) {
	f := newFleet()
	p := New(Config{Name: "t", Start: f.start, Concurrency: 1, QueueLimit: 1, QueueTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	if err := p.Resize(ctx, 1); err != nil {
		t.Fatal(err)
	}
	go invokeAndClose(p) // occupies the only slot
	waitFor(t, "in flight", func() bool { return p.Snapshot().InFlight == 1 })
	errc := make(chan error, 1)
	go func() { _, err := p.Invoke(ctx, &runtime.Request{}, Normal); errc <- err }()
	waitFor(t, "queued", func() bool { return p.Snapshot().Queued == 1 })
	if _, err := p.Invoke(ctx, &runtime.Request{}, Normal); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third invoke: %v, want ErrQueueFull", err)
	}
	if err := <-errc; !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("queued invoke: %v, want ErrQueueTimeout", err)
	}
	close(f.gate)
	p.Close(ctx)
}

func TestPriorityOrder(t *testing.T) {
	f := newFleet()
	p := New(Config{Name: "t", Start: f.start, Concurrency: 1})
	ctx := context.Background()
	p.Resize(ctx, 1)
	first := make(chan struct{})
	go func() {
		res, _ := p.Invoke(ctx, &runtime.Request{}, Normal)
		close(first)
		res.Body.Close()
	}()
	waitFor(t, "busy", func() bool { return p.Snapshot().InFlight == 1 })
	order := make(chan string, 2)
	go func() {
		res, err := p.Invoke(ctx, &runtime.Request{}, Low)
		if err == nil {
			res.Body.Close()
		}
		order <- "low"
	}()
	waitFor(t, "low queued", func() bool { return p.Snapshot().Queued == 1 })
	go func() {
		res, err := p.Invoke(ctx, &runtime.Request{}, Normal)
		if err == nil {
			order <- "normal"
			res.Body.Close()
			return
		}
		order <- "normal-err"
	}()
	waitFor(t, "normal queued", func() bool { return p.Snapshot().Queued == 2 })
	close(f.gate)
	if got := <-order; got != "normal" {
		t.Fatalf("first served = %s, want normal (higher priority)", got)
	}
	<-order
	p.Close(ctx)
}

func TestScaleInDrainsInFlight(t *testing.T) {
	f := newFleet()
	p := New(Config{Name: "t", Start: f.start, Concurrency: 1})
	ctx := context.Background()
	p.Resize(ctx, 2)
	done := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := p.Invoke(ctx, &runtime.Request{}, Normal)
			if err == nil {
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			done <- err
		}()
	}
	waitFor(t, "2 in flight", func() bool { return p.Snapshot().InFlight == 2 })
	resized := make(chan error, 1)
	go func() { resized <- p.Resize(ctx, 0) }()
	waitFor(t, "out of routing", func() bool { return p.Size() == 0 })
	select {
	case <-resized:
		t.Fatal("Resize returned before in-flight invocations finished")
	default:
	}
	close(f.gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("in-flight invocation failed during scale-in: %v", err)
		}
	}
	if err := <-resized; err != nil {
		t.Fatal(err)
	}
	for _, m := range f.models {
		if !m.closed.Load() {
			t.Errorf("instance %s not closed", m.id)
		}
	}
}

func TestStartFailureLeavesNothingRunning(t *testing.T) {
	f := newFleet()
	f.fail = errors.New("corrupt model")
	p := New(Config{Name: "t", Start: f.start})
	err := p.Resize(context.Background(), 2)
	if err == nil || !strings.Contains(err.Error(), "corrupt model") {
		t.Fatalf("Resize error = %v", err)
	}
	if p.Size() != 0 {
		t.Fatalf("Size = %d after failed start", p.Size())
	}
}

func TestCloseFailsWaiters(t *testing.T) {
	f := newFleet()
	p := New(Config{Name: "t", Start: f.start, Concurrency: 1})
	ctx := context.Background()
	p.Resize(ctx, 1)
	go invokeAndClose(p)
	waitFor(t, "busy", func() bool { return p.Snapshot().InFlight == 1 })
	errc := make(chan error, 1)
	go func() { _, err := p.Invoke(ctx, &runtime.Request{}, Normal); errc <- err }()
	waitFor(t, "queued", func() bool { return p.Snapshot().Queued == 1 })
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiter got %v, want ErrClosed", err)
	}
	close(f.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Invoke(ctx, &runtime.Request{}, Normal); !errors.Is(err, ErrClosed) {
		t.Fatalf("invoke after close: %v", err)
	}
}

func invokeAndClose(p *Pool) {
	res, err := p.Invoke(context.Background(), &runtime.Request{}, Normal)
	if err == nil {
		res.Body.Close()
	}
}
