package queue

import (
	"context"
	"testing"
	"time"
)

// A nack just before Close makes the message available at once after a
// restart, not after its lease.
func TestNackBeforeCloseSurvives(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q, err := Open(ctx, Config{Dir: dir, AckWait: time.Minute, PollWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, "t", "x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	d := next(t, q, "t", 5*time.Second)
	if err := d.Nack(ctx, 0); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q2 := open(t, dir, Config{AckWait: time.Minute, PollWait: 100 * time.Millisecond})
	if d := next(t, q2, "t", 10*time.Second); d.ID() != "x" {
		t.Fatalf("got %s attempt %d", d.ID(), d.Attempt())
	}
}
