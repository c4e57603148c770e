package autoscale

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/pool"
)

// fakeClock moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

type fakeTicker struct {
	clock   *fakeClock
	c       chan time.Time
	d       time.Duration
	next    time.Time
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(d time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{clock: c, c: make(chan time.Time, 1), d: d, next: c.now.Add(d)}
	c.tickers = append(c.tickers, t)
	return t
}

// Advance moves the clock and fires due ticks; like time.Ticker, a tick is
// dropped if the previous one was not taken.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.tickers {
		for !t.stopped && !t.next.After(c.now) {
			select {
			case t.c <- t.next:
			default:
			}
			t.next = t.next.Add(t.d)
		}
	}
}

func (c *fakeClock) activeTickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.tickers {
		if !t.stopped {
			n++
		}
	}
	return n
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop() {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.stopped = true
}

// fakeVariant stands in for the mode service: it reports pool stats and
// applies desired counts at once (every instance ready immediately).
type fakeVariant struct {
	mu      sync.Mutex
	stats   pool.Stats
	desired int
	fail    error // the next SetDesiredCount fails with it
	calls   []string
}

func (v *fakeVariant) Stats(resourceID string) (pool.Stats, int, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if resourceID != testResource {
		return pool.Stats{}, 0, false
	}
	s := v.stats
	s.Instances = v.desired
	return s, v.desired, true
}

func (v *fakeVariant) SetDesiredCount(_ context.Context, resourceID string, n int, reason string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, resourceID)
	if err := v.fail; err != nil {
		v.fail = nil
		return err
	}
	v.desired = n
	return nil
}

func (v *fakeVariant) addInvocations(n uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats.Invocations += n
}

func (v *fakeVariant) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.desired
}

var (
	_ Source = (*fakeVariant)(nil)
	_ Scaler = (*fakeVariant)(nil)
	_ Clock  = (*fakeClock)(nil)
)

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

func TestLoopAppliesDecisionsAndRecordsActivities(t *testing.T) {
	clock := &fakeClock{now: t0}
	variant := &fakeVariant{desired: 2}
	loop, err := NewLoop(variant, variant, clock, minuteTiming, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := loop.SetPolicy(invocationsPolicy("invocations", 70)); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("SetPolicy before SetTarget: err = %v, want ErrNoTarget", err)
	}
	if err := loop.SetTarget(target(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := loop.SetPolicy(customPolicy("cpu", "CPUUtilization", "Average", 50)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetPolicy with an unsupported metric: err = %v, want ErrInvalid", err)
	}
	if err := loop.SetPolicy(invocationsPolicy("invocations", 70)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop.Run(ctx)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	waitFor(t, "the loop's ticker", func() bool { return clock.activeTickers() == 1 })

	// minute runs one tick: the traffic of the minute ending at it, then
	// the tick, then waits until the loop has decided on it.
	minute := 0
	step := func(perMin uint64) {
		t.Helper()
		minute++
		variant.addInvocations(perMin)
		clock.Advance(time.Minute)
		at := t0.Add(time.Duration(minute) * time.Minute)
		waitFor(t, "decision at "+at.String(), func() bool {
			d, ok := loop.LastDecision(testResource)
			return ok && d.At.Equal(at)
		})
	}

	// 100/min on 2 instances for 5 minutes, then 280/min: scale-out to 4
	// at minute 8, as in TestDecideTimeline.
	for range 5 {
		step(100)
	}
	for range 3 {
		step(280)
	}
	if got := variant.count(); got != 4 {
		t.Fatalf("desired count after the load step = %d, want 4", got)
	}
	acts := loop.Activities(testResource)
	if len(acts) != 1 {
		t.Fatalf("activities = %+v, want one", acts)
	}
	a := acts[0]
	if a.StatusCode != StatusSuccessful || a.Description != "Setting desired instance count to 4." ||
		!strings.Contains(a.Cause, "AlarmHigh") || !strings.Contains(a.Cause, "triggered policy invocations") ||
		!a.StartTime.Equal(t0.Add(8*time.Minute)) || a.ResourceId != testResource || a.ActivityId == "" {
		t.Fatalf("activity = %+v", a)
	}

	// Raising MinCapacity applies at the next tick; the first attempt fails
	// and is recorded, the retry one period later succeeds.
	variant.mu.Lock()
	variant.fail = errors.New("endpoint is Updating")
	variant.mu.Unlock()
	if err := loop.SetTarget(target(6, 10)); err != nil {
		t.Fatal(err)
	}
	minute++
	variant.addInvocations(280)
	clock.Advance(time.Minute)
	waitFor(t, "the failed activity", func() bool { return len(loop.Activities(testResource)) == 2 })
	failed := loop.Activities(testResource)[0]
	if failed.StatusCode != StatusFailed || !strings.Contains(failed.StatusMessage, "endpoint is Updating") ||
		failed.Cause != "minimum capacity was set to 6" {
		t.Fatalf("failed activity = %+v", failed)
	}
	step(280)
	if got := variant.count(); got != 6 {
		t.Fatalf("desired count after raising MinCapacity = %d, want 6", got)
	}
	acts = loop.Activities(testResource)
	if len(acts) != 3 || acts[0].StatusCode != StatusSuccessful || acts[0].Description != "Setting desired instance count to 6." {
		t.Fatalf("activities, newest first = %+v", acts)
	}

	stop()
	if n := clock.activeTickers(); n != 0 {
		t.Fatalf("%d tickers still running after Run returned", n)
	}
}

func TestLoopRemove(t *testing.T) {
	loop, err := NewLoop(&fakeVariant{}, &fakeVariant{}, &fakeClock{now: t0}, Timing{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := loop.SetTarget(target(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := loop.SetPolicy(invocationsPolicy("p", 70)); err != nil {
		t.Fatal(err)
	}
	if err := loop.RemovePolicy(ServiceNamespace, testResource, ScalableDimension, "nope"); !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("RemovePolicy of a missing policy: err = %v, want ErrNoPolicy", err)
	}
	if err := loop.RemovePolicy(ServiceNamespace, testResource, ScalableDimension, "p"); err != nil {
		t.Fatal(err)
	}
	if err := loop.RemoveTarget(ServiceNamespace, testResource, ScalableDimension); err != nil {
		t.Fatal(err)
	}
	if err := loop.RemoveTarget(ServiceNamespace, testResource, ScalableDimension); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("RemoveTarget twice: err = %v, want ErrNoTarget", err)
	}
	if _, ok := loop.LastDecision(testResource); ok {
		t.Fatal("a removed target still has a decision")
	}
}

func TestNewLoopRejectsBadTiming(t *testing.T) {
	_, err := NewLoop(&fakeVariant{}, &fakeVariant{}, &fakeClock{}, Timing{Period: time.Second, Tick: time.Minute}, nil)
	if err == nil {
		t.Fatal("NewLoop accepted a tick longer than the period")
	}
}
