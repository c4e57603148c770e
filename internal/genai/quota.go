package genai

import (
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
)

// Quota limits one caller's on-demand traffic to one model: requests and
// tokens (input plus output) per minute. Zero is unlimited.
type Quota struct {
	RequestsPerMinute int
	TokensPerMinute   int
}

// Quotas are the default quota and per-model overrides.
type Quotas struct {
	Default Quota
	Models  map[string]Quota
}

// bucket is a token bucket holding at most capacity, refilled at
// capacity per minute: a caller may burst a minute's quota, then
// continues at the quota's rate.
type bucket struct {
	level float64
	last  time.Time
}

// refill brings b up to now and reports its level.
func (b *bucket) refill(capacity int, now time.Time) float64 {
	if b.last.IsZero() {
		b.level = float64(capacity)
	} else if d := now.Sub(b.last); d > 0 {
		b.level = min(float64(capacity), b.level+float64(capacity)*d.Minutes())
	}
	b.last = now
	return b.level
}

type quotaKey struct{ model, caller string }

type quotaState struct{ requests, tokens bucket }

// limiter applies Quotas. Deciding (admit) is a function of the buckets
// and now; the clock is injected.
type limiter struct {
	quotas Quotas
	now    func() time.Time

	mu     sync.Mutex
	states map[quotaKey]*quotaState
}

func newLimiter(q Quotas, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{quotas: q, now: now, states: map[quotaKey]*quotaState{}}
}

func (l *limiter) quotaOf(model string) Quota {
	if q, ok := l.quotas.Models[model]; ok {
		return q
	}
	return l.quotas.Default
}

// reservation is what admit took from a caller's buckets; settle
// returns the unused tokens.
type reservation struct {
	l        *limiter
	key      quotaKey
	reserved int
}

// admit takes one request and reserve tokens from (model, caller)'s
// quota, or refuses with a Throttled error in Bedrock's wording. Nothing
// is taken when the call is refused.
func (l *limiter) admit(model, caller string, reserve int) (*reservation, error) {
	q := l.quotaOf(model)
	if q.RequestsPerMinute == 0 && q.TokensPerMinute == 0 {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := quotaKey{model, caller}
	st, ok := l.states[k]
	if !ok {
		st = &quotaState{}
		l.states[k] = st
	}
	if q.RequestsPerMinute > 0 && st.requests.refill(q.RequestsPerMinute, now) < 1 {
		return nil, &apierr.Error{Kind: apierr.Throttled, Message: "Too many requests, please wait before trying again."}
	}
	if q.TokensPerMinute > 0 && st.tokens.refill(q.TokensPerMinute, now) < float64(reserve) {
		return nil, &apierr.Error{Kind: apierr.Throttled, Message: "Too many tokens, please wait before trying again."}
	}
	if q.RequestsPerMinute > 0 {
		st.requests.level--
	}
	r := &reservation{l: l, key: k}
	if q.TokensPerMinute > 0 {
		st.tokens.level -= float64(reserve)
		r.reserved = reserve
	}
	return r, nil
}

// settle charges used tokens against the reservation: the rest goes back
// (or, if more were used than reserved, the difference is taken).
func (r *reservation) settle(used int) {
	if r == nil || r.reserved == 0 {
		return
	}
	l := r.l
	q := l.quotaOf(r.key.model)
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.states[r.key]
	st.tokens.refill(q.TokensPerMinute, l.now())
	st.tokens.level = min(float64(q.TokensPerMinute), st.tokens.level+float64(r.reserved-used))
	r.reserved = 0
}
