package genai

import (
	"context"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

// The limiter read as a timeline: a burst of one minute's quota, then
// refusals, then refill at the quota's rate; reservations refunded.
func TestLimiterTimeline(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newLimiter(Quotas{Default: Quota{RequestsPerMinute: 3, TokensPerMinute: 1000},
		Models: map[string]Quota{"free": {}}}, func() time.Time { return now })
	throttled := func(err error) bool { return err != nil && apierr.As(err).Kind == apierr.Throttled }

	r1, err := l.admit("m", "alice", 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.admit("m", "alice", 600); !throttled(err) || apierr.As(err).Message != "Too many tokens, please wait before trying again." {
		t.Fatalf("second 600-token reservation: %v, want token throttling", err)
	}
	// Another caller and another model have their own buckets.
	if _, err := l.admit("m", "bob", 600); err != nil {
		t.Fatalf("bob: %v", err)
	}
	if r, err := l.admit("free", "alice", 1_000_000); err != nil || r != nil {
		t.Fatalf("unlimited model: %v %v", r, err)
	}
	// Only 100 of 600 used: 500 come back.
	r1.settle(100)
	if _, err := l.admit("m", "alice", 800); err != nil {
		t.Fatalf("after refund: %v", err)
	}
	if _, err := l.admit("m", "alice", 0); err != nil {
		t.Fatalf("third request: %v", err)
	}
	if _, err := l.admit("m", "alice", 0); !throttled(err) || apierr.As(err).Message != "Too many requests, please wait before trying again." {
		t.Fatalf("fourth request in a minute: %v, want request throttling", err)
	}
	now = now.Add(20 * time.Second) // one request back (3 per minute)
	if _, err := l.admit("m", "alice", 0); err != nil {
		t.Fatalf("20 s later: %v", err)
	}
	if _, err := l.admit("m", "alice", 0); !throttled(err) {
		t.Fatalf("no second request yet: %v", err)
	}
}

// Batch (low-priority) generations are outside the on-demand quotas: with
// one request a minute, interactive calls are throttled after the first
// while batch calls from the same caller all run.
func TestBatchOutsideQuota(t *testing.T) {
	s := newStories(t, Config{Quotas: Quotas{Default: Quota{RequestsPerMinute: 1}}})
	ctx := context.Background()
	gen := func(prio pool.Priority) error {
		_, err := s.Generate(ctx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time",
			Params: llama.Params{MaxTokens: 4}, Caller: "alice", Priority: prio}, nil)
		return err
	}
	if err := gen(pool.Normal); err != nil {
		t.Fatalf("first interactive request: %v", err)
	}
	for i := range 3 {
		if err := gen(pool.Low); err != nil {
			t.Fatalf("batch request %d: %v", i, err)
		}
	}
	if err := gen(pool.Normal); err == nil || apierr.As(err).Kind != apierr.Throttled {
		t.Fatalf("second interactive request in a minute: %v, want throttled", err)
	}
}
