package queue

import (
	"context"
	"errors"
	"testing"
	"time"
)

func open(t *testing.T, dir string, cfg Config) *JetStream {
	t.Helper()
	cfg.Dir = dir
	q, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

func next(t *testing.T, q *JetStream, topic string, within time.Duration) Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	d, err := q.Next(ctx, topic)
	if err != nil {
		t.Fatalf("next %s: %v", topic, err)
	}
	return d
}

// nothing checks that topic delivers nothing for a while.
func nothing(t *testing.T, q *JetStream, topic string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if d, err := q.Next(ctx, topic); err == nil {
		t.Fatalf("unexpected delivery %s (attempt %d)", d.ID(), d.Attempt())
	}
}

func TestEnqueueNextAck(t *testing.T) {
	ctx := context.Background()
	q := open(t, t.TempDir(), Config{PollWait: 200 * time.Millisecond})
	for _, id := range []string{"a", "b"} {
		if err := q.Enqueue(ctx, "ep1", id, []byte("body-"+id)); err != nil {
			t.Fatal(err)
		}
	}
	// A duplicate id within the window is stored once.
	if err := q.Enqueue(ctx, "ep1", "a", []byte("body-a")); err != nil {
		t.Fatal(err)
	}
	dep, err := q.Depth(ctx, "ep1")
	if err != nil || dep.Messages != 2 || dep.Oldest.IsZero() {
		t.Fatalf("depth = %+v, %v; want 2 messages with an oldest time", dep, err)
	}
	for _, want := range []string{"a", "b"} {
		d := next(t, q, "ep1", 5*time.Second)
		if d.ID() != want || string(d.Body()) != "body-"+want || d.Attempt() != 1 || d.Exhausted() {
			t.Fatalf("got %s %q attempt %d, want %s", d.ID(), d.Body(), d.Attempt(), want)
		}
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	nothing(t, q, "ep1", 300*time.Millisecond)
	if dep, _ := q.Depth(ctx, "ep1"); dep.Messages != 0 {
		t.Fatalf("depth after acks = %+v", dep)
	}
	// Topics are separate.
	nothing(t, q, "ep2", 300*time.Millisecond)
	if err := q.Enqueue(ctx, "bad.topic", "x", nil); err == nil {
		t.Fatal("a topic with a dot was accepted")
	}
}

func TestRedeliveryAfterLeaseExpires(t *testing.T) {
	ctx := context.Background()
	q := open(t, t.TempDir(), Config{AckWait: 300 * time.Millisecond, PollWait: 200 * time.Millisecond})
	if err := q.Enqueue(ctx, "t", "x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	d := next(t, q, "t", 5*time.Second)
	if d.Attempt() != 1 {
		t.Fatalf("attempt %d", d.Attempt())
	}
	// Not acked: the lease lapses and it comes again.
	d2 := next(t, q, "t", 10*time.Second)
	if d2.ID() != "x" || d2.Attempt() != 2 {
		t.Fatalf("redelivery %s attempt %d", d2.ID(), d2.Attempt())
	}
	// Nack with a delay: it comes back, a third time.
	if err := d2.Nack(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	d3 := next(t, q, "t", 10*time.Second)
	if d3.Attempt() != 3 {
		t.Fatalf("after nack attempt %d", d3.Attempt())
	}
	_ = d3.Ack(ctx)
}

func TestInProgressKeepsLongJob(t *testing.T) {
	ctx := context.Background()
	const lease = 400 * time.Millisecond
	q := open(t, t.TempDir(), Config{AckWait: lease, PollWait: 100 * time.Millisecond})
	if err := q.Enqueue(ctx, "t", "long", []byte("1")); err != nil {
		t.Fatal(err)
	}
	d := next(t, q, "t", 5*time.Second)
	// Work for several leases, extending each time; no redelivery meanwhile.
	deadline := time.Now().Add(4 * lease)
	for time.Now().Before(deadline) {
		if err := d.InProgress(ctx); err != nil {
			t.Fatal(err)
		}
		nothing(t, q, "t", lease/4)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	nothing(t, q, "t", 2*lease)
}

func TestMaxDeliverExhausts(t *testing.T) {
	ctx := context.Background()
	q := open(t, t.TempDir(), Config{MaxDeliver: 2, PollWait: 100 * time.Millisecond})
	if err := q.Enqueue(ctx, "t", "x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		d := next(t, q, "t", 5*time.Second)
		if d.Attempt() != i || d.Exhausted() {
			t.Fatalf("delivery %d: attempt %d exhausted %v", i, d.Attempt(), d.Exhausted())
		}
		_ = d.Nack(ctx, 0)
	}
	d := next(t, q, "t", 5*time.Second)
	if !d.Exhausted() || d.Attempt() != 3 {
		t.Fatalf("third delivery: attempt %d exhausted %v", d.Attempt(), d.Exhausted())
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	nothing(t, q, "t", 300*time.Millisecond)
}

func TestDurableAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q, err := Open(ctx, Config{Dir: dir, PollWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		if err := q.Enqueue(ctx, "t", id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	d := next(t, q, "t", 5*time.Second)
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	// Leased but never acked when the server stops.
	_ = next(t, q, "t", 5*time.Second)
	q.Close()
	q.Close() // idempotent
	if err := q.Enqueue(ctx, "t", "late", nil); err == nil {
		t.Fatal("enqueue after close succeeded")
	}

	q2 := open(t, dir, Config{AckWait: 300 * time.Millisecond, PollWait: 100 * time.Millisecond})
	got := map[string]bool{}
	for range 2 {
		d := next(t, q2, "t", 10*time.Second)
		got[d.ID()] = true
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !got["2"] || !got["3"] {
		t.Fatalf("after restart got %v, want 2 and 3", got)
	}
	nothing(t, q2, "t", 500*time.Millisecond)
}

func TestNextHonoursContext(t *testing.T) {
	q := open(t, t.TempDir(), Config{PollWait: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Next(ctx, "t"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
