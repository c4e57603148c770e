package meter_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/meter"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openDB opens the catalog's database, which the ledger shares in
// production.
func openDB(t testing.TB, path string) *catalog.Store {
	t.Helper()
	s, err := catalog.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLedger(t testing.TB, opts ...meter.Option) (*meter.Ledger, *catalog.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inferbox.db")
	s := openDB(t, path)
	l, err := meter.NewLedger(context.Background(), s.DB(), quiet(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l, s, path
}

// clock is a settable clock for last_seen stamps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func inv(i int) meter.Invocation {
	return meter.Invocation{
		Time: t0.Add(time.Duration(i) * time.Millisecond), Mode: "realtime", Resource: "ep", Variant: "AllTraffic",
		InstanceType: "ml.m5.large", Caller: "tester", ModelLatency: 1500 * time.Microsecond,
		TotalLatency: 2 * time.Millisecond, Status: 200, BytesIn: int64(100 + i), BytesOut: 7, InputTokens: 3, OutputTokens: i,
	}
}

func TestFlushMakesRowsVisible(t *testing.T) {
	ctx := context.Background()
	l, _, _ := newLedger(t)
	for i := range 3 {
		l.RecordInvocation(inv(i))
	}
	got, err := l.Invocations(ctx, t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("before Flush: %d rows written, want 0 (RecordInvocation must not write)", len(got))
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = l.Invocations(ctx, t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("after Flush: %d rows, want 3", len(got))
	}
	for i, g := range got {
		if w := inv(i); g != w {
			t.Errorf("row %d = %+v\nwant %+v", i, g, w)
		}
	}
	// The window is [from, to).
	got, err = l.Invocations(ctx, t0.Add(time.Millisecond), t0.Add(2*time.Millisecond))
	if err != nil || len(got) != 1 || got[0].OutputTokens != 1 {
		t.Fatalf("window [1ms, 2ms) = %+v, %v; want the one row at 1ms", got, err)
	}
}

func TestCloseFlushesAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	l, s, _ := newLedger(t)
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "i-1", Mode: "realtime", Resource: "ep", Variant: "v", InstanceType: "ml.m5.xlarge", Start: t0})
	l.RecordInvocation(inv(0))
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// A fresh reader on the same database sees what Close wrote.
	r, err := meter.NewLedger(ctx, s.DB(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Invocations(ctx, time.Time{}, time.Time{}); err != nil || len(got) != 1 {
		t.Fatalf("invocations after Close = %d, %v; want 1", len(got), err)
	}
	if got, err := r.Instances(ctx, time.Time{}, time.Time{}); err != nil || len(got) != 1 {
		t.Fatalf("instances after Close = %d, %v; want 1", len(got), err)
	}
}

func TestInstanceLifetimes(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	l, _, _ := newLedger(t, meter.WithClock(clk.now))
	// Start and stop in one batch: the stop must apply after the start.
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "a", Mode: "realtime", Resource: "ep", Variant: "v", InstanceType: "ml.m5.large", Start: t0})
	l.InstanceStopped("a", t0.Add(time.Hour))
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "b", Mode: "transform", Resource: "job", Variant: "", InstanceType: "ml.c5.xlarge", Start: t0.Add(2 * time.Hour)})
	clk.set(t0.Add(2 * time.Hour))
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := l.Instances(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("instances = %+v, want 2", all)
	}
	if a := all[0]; a.InstanceID != "a" || !a.End.Equal(t0.Add(time.Hour)) || a.Recovered {
		t.Errorf("a = %+v; want ended at t0+1h", a)
	}
	if b := all[1]; b.InstanceID != "b" || !b.End.IsZero() || b.Mode != "transform" || b.InstanceType != "ml.c5.xlarge" {
		t.Errorf("b = %+v; want running", b)
	}
	// Overlap: only b runs after t0+90m; only a overlaps [t0+30m, t0+31m).
	if got, _ := l.Instances(ctx, t0.Add(90*time.Minute), time.Time{}); len(got) != 1 || got[0].InstanceID != "b" {
		t.Errorf("instances after t0+90m = %+v, want b", got)
	}
	if got, _ := l.Instances(ctx, t0.Add(30*time.Minute), t0.Add(31*time.Minute)); len(got) != 1 || got[0].InstanceID != "a" {
		t.Errorf("instances in [t0+30m, t0+31m) = %+v, want a", got)
	}
	// An instance ID may run again after it stopped.
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "a", Start: t0.Add(3 * time.Hour)})
	l.InstanceStopped("a", t0.Add(4*time.Hour))
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Instances(ctx, t0.Add(3*time.Hour), time.Time{}); len(got) != 2 {
		t.Errorf("after a's second life: %+v; want b and the new a", got)
	}
}

// A process that dies without Close leaves instances open; the next
// NewLedger closes them at their last heartbeat.
func TestCrashRecoveryClosesOpenInstances(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inferbox.db")
	clk := &clock{t: t0}
	s1 := openDB(t, path)
	l1, err := meter.NewLedger(ctx, s1.DB(), quiet(), meter.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	l1.InstanceStarted(meter.InstanceUsage{InstanceID: "crashy", Mode: "realtime", Resource: "ep", InstanceType: "ml.m5.large", Start: t0})
	l1.InstanceStarted(meter.InstanceUsage{InstanceID: "clean", Mode: "realtime", Resource: "ep", InstanceType: "ml.m5.large", Start: t0})
	for _, d := range []time.Duration{time.Minute, 2 * time.Minute} {
		clk.set(t0.Add(d))
		if err := l1.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l1.InstanceStopped("clean", t0.Add(150*time.Second))
	if err := l1.Flush(ctx); err != nil { // last heartbeat for crashy: t0+2m (clock unchanged)
		t.Fatal(err)
	}
	// Buffered but never flushed: lost in the crash, as documented.
	clk.set(t0.Add(time.Hour))
	l1.RecordInvocation(inv(0))
	// kill -9: no Close; the database handle just goes away.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openDB(t, path)
	l2, err := meter.NewLedger(ctx, s2.DB(), quiet(), meter.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	got, err := l2.Instances(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]meter.InstanceRecord{}
	for _, r := range got {
		byID[r.InstanceID] = r
	}
	if c := byID["crashy"]; !c.End.Equal(t0.Add(2*time.Minute)) || !c.Recovered {
		t.Errorf("crashy = %+v; want closed at its last heartbeat t0+2m, Recovered", c)
	}
	if c := byID["clean"]; !c.End.Equal(t0.Add(150*time.Second)) || c.Recovered {
		t.Errorf("clean = %+v; want its own end t0+150s, not Recovered", c)
	}
	if invs, err := l2.Invocations(ctx, time.Time{}, time.Time{}); err != nil || len(invs) != 0 {
		t.Errorf("invocations = %d, %v; want 0 (the unflushed row died with the process)", len(invs), err)
	}
}

func TestFailedFlushKeepsRows(t *testing.T) {
	l, _, _ := newLedger(t)
	l.RecordInvocation(inv(0))
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "x", Start: t0})
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Flush(dead); err == nil {
		t.Fatal("Flush with a canceled context succeeded")
	}
	l.RecordInvocation(inv(1))
	ctx := context.Background()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := l.Invocations(ctx, time.Time{}, time.Time{})
	if err != nil || len(got) != 2 || got[0] != inv(0) || got[1] != inv(1) {
		t.Fatalf("after retry: %+v, %v; want rows 0 and 1 in order", got, err)
	}
	if is, err := l.Instances(ctx, time.Time{}, time.Time{}); err != nil || len(is) != 1 {
		t.Fatalf("instances after retry = %d, %v; want 1", len(is), err)
	}
}

func TestRunFlushesOnTickAndOnStop(t *testing.T) {
	l, _, _ := newLedger(t, meter.WithFlushInterval(10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()

	l.RecordInvocation(inv(0))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := l.Invocations(context.Background(), time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not flush within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.RecordInvocation(inv(1))
	cancel()
	<-done
	got, err := l.Invocations(context.Background(), time.Time{}, time.Time{})
	if err != nil || len(got) != 2 {
		t.Fatalf("after Run returned: %d rows, %v; want 2 (final flush)", len(got), err)
	}
}

// Many goroutines record at once, with a small buffer so that callers hit
// the synchronous-flush path while Run flushes too. Every row lands once.
func TestConcurrentRecordInvocation(t *testing.T) {
	l, _, _ := newLedger(t, meter.WithMaxBuffer(64), meter.WithFlushInterval(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	const workers, each = 16, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				v := inv(i)
				v.Caller = fmt.Sprintf("w%d", w)
				l.RecordInvocation(v)
				if i%100 == 0 {
					l.InstanceStarted(meter.InstanceUsage{InstanceID: fmt.Sprintf("%s-%d", v.Caller, i), Start: t0})
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	<-done
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := l.Invocations(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each {
		t.Fatalf("rows = %d, want %d", len(got), workers*each)
	}
	seen := map[string]bool{}
	for _, g := range got {
		k := fmt.Sprintf("%s/%d", g.Caller, g.OutputTokens)
		if seen[k] {
			t.Fatalf("row %s written twice", k)
		}
		seen[k] = true
	}
	if is, _ := l.Instances(context.Background(), time.Time{}, time.Time{}); len(is) != workers*each/100 {
		t.Fatalf("instances = %d, want %d", len(is), workers*each/100)
	}
}

func TestOptionsValidated(t *testing.T) {
	s := openDB(t, filepath.Join(t.TempDir(), "x.db"))
	for _, o := range []meter.Option{meter.WithFlushInterval(0), meter.WithMaxBuffer(0)} {
		if _, err := meter.NewLedger(context.Background(), s.DB(), quiet(), o); err == nil {
			t.Error("NewLedger accepted an invalid option")
		}
	}
}

// BenchmarkRecordInvocation measures the hot path with Run flushing in the
// background, as in production: the per-call cost includes the amortized
// share of the writes whenever a caller hits the buffer bound.
func BenchmarkRecordInvocation(b *testing.B) {
	l, _, _ := newLedger(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.RecordInvocation(inv(int(n.Add(1))))
		}
	})
	b.StopTimer()
	cancel()
	<-done
}

// BenchmarkFlush measures the write side: rows per second into SQLite.
func BenchmarkFlush(b *testing.B) {
	l, _, _ := newLedger(b)
	ctx := context.Background()
	const batch = 10000
	b.ResetTimer()
	for range b.N {
		for i := range batch {
			l.RecordInvocation(inv(i))
		}
		if err := l.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRecordInvocationBuffered measures the hot path alone, in one
// goroutine: the buffer is written outside the timer before it fills.
func BenchmarkRecordInvocationBuffered(b *testing.B) {
	const bound = 1 << 16
	l, _, _ := newLedger(b, meter.WithMaxBuffer(bound+1))
	ctx := context.Background()
	v := inv(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%bound == bound-1 {
			b.StopTimer()
			if err := l.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		l.RecordInvocation(v)
	}
}
