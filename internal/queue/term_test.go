package queue

import (
	"context"
	"testing"
	"time"
)

// A termed message is removed like an acked one and never handed out
// again; Stats counts its deliveries.
func TestTermRemovesMessage(t *testing.T) {
	ctx := context.Background()
	q := open(t, t.TempDir(), Config{MaxDeliver: 1, PollWait: 100 * time.Millisecond})
	if st, err := q.Stats(ctx, "t"); err != nil || st != (TopicStats{}) {
		t.Fatalf("stats before any consumer = %+v, %v", st, err)
	}
	if err := q.Enqueue(ctx, "t", "x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	d := next(t, q, "t", 5*time.Second)
	_ = d.Nack(ctx, 0)
	d = next(t, q, "t", 5*time.Second)
	if !d.Exhausted() {
		t.Fatalf("attempt %d not exhausted", d.Attempt())
	}
	if err := d.Term(ctx, "cannot record the failure"); err != nil {
		t.Fatal(err)
	}
	nothing(t, q, "t", 300*time.Millisecond)
	st, err := q.Stats(ctx, "t")
	if err != nil || st.Delivered != 2 || st.Leased != 0 || st.Waiting != 0 {
		t.Fatalf("stats after term = %+v, %v; want 2 deliveries, nothing leased or waiting", st, err)
	}
	if dep, err := q.Depth(ctx, "t"); err != nil || dep.Messages != 0 {
		t.Fatalf("depth after term = %+v, %v", dep, err)
	}
}

// A message that reaches the pull of a Next cancelled meanwhile is handed
// back at once, not left leased to nobody until its lease lapses.
func TestCancelledNextHandsBackMessage(t *testing.T) {
	ctx := context.Background()
	q := open(t, t.TempDir(), Config{AckWait: time.Hour, PollWait: 3 * time.Second})
	// A first Next starts a pull at the server, then is cancelled.
	cctx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		_, err := q.Next(cctx, "t")
		done <- err
	}()
	<-started
	// Wait until its pull is waiting at the server.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := q.stream.Consumer(ctx, "t")
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumWaiting > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the first pull never reached the server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled Next returned a delivery")
	}
	// The abandoned pull is first in line for this message.
	if err := q.Enqueue(ctx, "t", "x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	d := next(t, q, "t", 10*time.Second)
	if d.ID() != "x" {
		t.Fatalf("got %s", d.ID())
	}
	_ = d.Ack(ctx)
}
