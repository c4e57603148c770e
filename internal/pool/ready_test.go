package pool

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/inferbox/inferbox/internal/runtime"
)

// readyModel answers at once and reports the readiness a test sets, like
// a model server that is being replaced.
type readyModel struct {
	id    string
	calls atomic.Int64
	up    atomic.Bool
}

func (m *readyModel) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	m.calls.Add(1)
	return &runtime.Response{Body: io.NopCloser(strings.NewReader(m.id))}, nil
}

func (m *readyModel) Close() error { return nil }
func (m *readyModel) Ready() bool  { return m.up.Load() }

var _ readiness = (*readyModel)(nil)

func TestRoutesAroundInstancesThatAreNotReady(t *testing.T) {
	for _, routing := range []Routing{LeastOutstanding, Random} {
		t.Run(map[Routing]string{LeastOutstanding: "least outstanding", Random: "random"}[routing], func(t *testing.T) {
			var mu sync.Mutex
			byID := map[string]*readyModel{}
			start := func(ctx context.Context, id string) (runtime.Model, func(), error) {
				m := &readyModel{id: id}
				m.up.Store(true)
				mu.Lock()
				byID[id] = m
				mu.Unlock()
				return m, nil, nil
			}
			p := New(Config{Name: "r", Start: start, Concurrency: 4, Routing: routing})
			ctx := context.Background()
			t.Cleanup(func() { p.Close(ctx) })
			if err := p.Resize(ctx, 2); err != nil {
				t.Fatal(err)
			}
			a, b := byID["r-1"], byID["r-2"]
			run := func(n int) (onA, onB int64) {
				a0, b0 := a.calls.Load(), b.calls.Load()
				for range n {
					res, err := p.Invoke(ctx, &runtime.Request{}, Normal)
					if err != nil {
						t.Fatal(err)
					}
					res.Body.Close()
				}
				return a.calls.Load() - a0, b.calls.Load() - b0
			}

			a.up.Store(false)
			if onA, onB := run(20); onA != 0 || onB != 20 {
				t.Errorf("a not ready: %d on a, %d on b; want all on b", onA, onB)
			}
			// None ready: the pool still hands invocations to instances
			// (they wait inside the model), rather than refusing them.
			b.up.Store(false)
			if onA, onB := run(20); onA+onB != 20 {
				t.Errorf("none ready: %d on a, %d on b; want 20 in all", onA, onB)
			}
			a.up.Store(true)
			if onA, onB := run(20); onA != 20 || onB != 0 {
				t.Errorf("only a ready: %d on a, %d on b; want all on a", onA, onB)
			}
			if got := p.Size(); got != 2 {
				t.Errorf("Size = %d, want 2: an instance that is not ready stays in the pool", got)
			}
		})
	}
}
