package pool

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/runtime"
)

// slowFleet starts instances only when the test lets it, so a cold start
// can be observed in progress.
type slowFleet struct {
	fleet
	startGate chan struct{}
	starts    int
	mu2       sync.Mutex
	failNext  error
}

func (f *slowFleet) start(ctx context.Context, id string) (runtime.Model, func(), error) {
	f.mu2.Lock()
	f.starts++
	fail := f.failNext
	f.failNext = nil
	f.mu2.Unlock()
	select {
	case <-f.startGate:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if fail != nil {
		return nil, nil, fail
	}
	return f.fleet.start(ctx, id)
}

func (f *slowFleet) startCount() int {
	f.mu2.Lock()
	defer f.mu2.Unlock()
	return f.starts
}

func TestElasticScaleFromZeroSharesColdStart(t *testing.T) {
	f := &slowFleet{fleet: *newFleet(), startGate: make(chan struct{})}
	p := New(Config{Name: "s", Start: f.start, Concurrency: 4, Elastic: true, MaxInstances: 5, MaxInFlight: 20})
	defer p.Close(context.Background())
	results := make(chan *Result, 3)
	for range 3 {
		go func() {
			res, err := p.Invoke(context.Background(), &runtime.Request{}, Normal)
			if err != nil {
				t.Error(err)
				results <- nil
				return
			}
			results <- res
		}()
	}
	waitFor(t, "3 waiting", func() bool { return p.Snapshot().Queued == 3 })
	if n := f.startCount(); n != 1 {
		t.Fatalf("3 concurrent requests at concurrency 4 started %d instances, want 1 shared cold start", n)
	}
	close(f.startGate)
	close(f.gate)
	for range 3 {
		res := <-results
		if res == nil {
			continue
		}
		if res.ColdStart <= 0 {
			t.Errorf("a request that waited for the start reports no cold start")
		}
		res.Body.Close()
	}
	// Warm now: no cold start.
	res, err := p.Invoke(context.Background(), &runtime.Request{}, Normal)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ColdStart != 0 {
		t.Errorf("warm request reports a cold start of %v", res.ColdStart)
	}
}

func TestElasticGrowsWithConcurrencyUpToMax(t *testing.T) {
	f := newFleet()
	p := New(Config{Name: "s", Start: f.start, Concurrency: 1, Elastic: true, MaxInstances: 3, MaxInFlight: 5})
	defer p.Close(context.Background())
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); invokeAndClose(p) }()
	}
	waitFor(t, "3 instances busy, 2 waiting", func() bool { s := p.Snapshot(); return s.Instances == 3 && s.InFlight == 3 && s.Queued == 2 })
	// A sixth is over MaxInFlight: refused at once.
	if _, err := p.Invoke(context.Background(), &runtime.Request{}, Normal); !errors.Is(err, ErrThrottled) {
		t.Fatalf("sixth invocation: %v, want ErrThrottled", err)
	}
	close(f.gate)
	wg.Wait()
	if s := p.Snapshot(); s.Instances != 3 {
		t.Fatalf("instances = %d, want MaxInstances 3", s.Instances)
	}
}

func TestElasticFailedStartFailsWaitersAndRetries(t *testing.T) {
	f := &slowFleet{fleet: *newFleet(), startGate: make(chan struct{})}
	close(f.startGate)
	f.failNext = errors.New("corrupt model file")
	close(f.gate)
	p := New(Config{Name: "s", Start: f.start, Concurrency: 1, Elastic: true, MaxInstances: 2})
	defer p.Close(context.Background())
	_, err := p.Invoke(context.Background(), &runtime.Request{}, Normal)
	if err == nil || !strings.Contains(err.Error(), "corrupt model file") {
		t.Fatalf("first invocation: %v, want the load error", err)
	}
	res, err := p.Invoke(context.Background(), &runtime.Request{}, Normal)
	if err != nil {
		t.Fatalf("second invocation should retry the load: %v", err)
	}
	res.Body.Close()
	if f.startCount() != 2 {
		t.Fatalf("starts = %d, want 2", f.startCount())
	}
}

// The scale-to-zero decision, as a timeline.
func TestIdleVictimsTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	idle := 5 * time.Minute
	insts := []InstanceState{
		{ID: "a", LastUsed: t0},
		{ID: "b", LastUsed: t0.Add(2 * time.Minute)},
		{ID: "c", LastUsed: t0.Add(1 * time.Minute), Outstanding: 1},
	}
	for _, step := range []struct {
		at   time.Duration
		keep int
		want string
	}{
		{4 * time.Minute, 0, ""},     // nobody idle for 5 minutes yet
		{5 * time.Minute, 0, "a"},    // a's five minutes are up
		{7 * time.Minute, 0, "a,b"},  // then b's; c is busy, never stopped
		{7 * time.Minute, 2, "a"},    // provisioned concurrency keeps two warm
		{7 * time.Minute, 3, ""},     // keep all three
		{30 * time.Minute, 1, "a,b"}, // busy c counts towards keep
	} {
		got := strings.Join(IdleVictims(insts, step.keep, idle, t0.Add(step.at)), ",")
		if got != step.want {
			t.Errorf("at +%v keep %d: stop [%s], want [%s]", step.at, step.keep, got, step.want)
		}
	}
}

func TestStopIdleScalesToZeroAndBack(t *testing.T) {
	f := newFleet()
	close(f.gate)
	p := New(Config{Name: "s", Start: f.start, Concurrency: 1, Elastic: true, MaxInstances: 2})
	defer p.Close(context.Background())
	invokeAndClose(p)
	if p.Size() != 1 {
		t.Fatalf("size after first request = %d", p.Size())
	}
	if n := p.StopIdle(0, time.Hour, time.Now()); n != 0 {
		t.Fatalf("stopped %d instances that were not idle for an hour", n)
	}
	if n := p.StopIdle(0, 0, time.Now()); n != 1 || p.Size() != 0 {
		t.Fatalf("StopIdle stopped %d, size %d; want scale to zero", n, p.Size())
	}
	invokeAndClose(p)
	if p.Size() != 1 {
		t.Fatalf("size after cold request = %d", p.Size())
	}
	p.EnsureAtLeast(2)
	waitFor(t, "2 warm", func() bool { return p.Size() == 2 })
	if n := p.StopIdle(2, 0, time.Now()); n != 0 {
		t.Fatalf("StopIdle with keep 2 stopped %d", n)
	}
}
