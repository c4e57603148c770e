package genai

import (
	"context"
	"github.com/inferbox/inferbox/internal/testmodel"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

func newStoriesTB(tb testing.TB, cfg Config) *Service {
	tb.Helper()
	path := testmodel.Stories260K(tb)
	reg := gguf.NewRegistry()
	if _, err := readMeta(reg, path); err != nil {
		tb.Fatalf("test model: %v", err)
	}
	types, err := instancetype.Default()
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Models = []ModelSpec{{ID: "meta.stories", Path: path}}
	s, err := New(cfg, Deps{Loader: llama.NewLoader(reg, 0), Registry: reg, Types: types, Node: instancetype.NewNode(64, 64<<30)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func inService(tb testing.TB, s *Service, id string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := s.GetProvisioned(id)
		if err != nil {
			tb.Fatal(err)
		}
		if p.Status == StatusInService {
			return
		}
		if p.Status == StatusFailed || time.Now().After(deadline) {
			tb.Fatalf("provisioned throughput %+v", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A provisioned throughput's dedicated pool queues up to its bound, then
// throttles; its traffic skips the on-demand quota.
func TestProvisionedQueueBound(t *testing.T) {
	s := newStoriesTB(t, Config{Concurrency: 1, ProvisionedQueue: 1, Quotas: Quotas{Default: Quota{RequestsPerMinute: 1}}})
	ctx := context.Background()
	p, err := s.CreateProvisioned(ctx, "pt", "meta.stories", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	inService(t, s, p.ID)
	ref := ProvisionedRef + p.ID
	req := func() *Request {
		return &Request{ModelID: ref, Prompt: "Once upon a time", Params: llama.Params{MaxTokens: 8}}
	}

	release := make(chan struct{})
	holding := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // holds the unit's only slot until released
		defer wg.Done()
		_, err := s.Generate(ctx, req(), func(string) error {
			once.Do(func() { close(holding) })
			<-release
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}()
	<-holding
	go func() { // waits in the queue (its bound is 1)
		defer wg.Done()
		if _, err := s.Generate(ctx, req(), nil); err != nil {
			t.Error(err)
		}
	}()
	d, _ := s.lookup(p.ID)
	waitUntil(t, "a queued request", func() bool { return d.pool.Snapshot().Queued == 1 })
	_, err = s.Generate(ctx, req(), nil)
	if apierr.As(err).Kind != apierr.Throttled {
		t.Fatalf("beyond the queue bound: %v, want Throttled", err)
	}
	close(release)
	wg.Wait()

	// The on-demand quota (1 request a minute) does not apply here.
	for range 3 {
		if _, err := s.Generate(ctx, req(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteProvisioned(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Generate(ctx, req(), nil); apierr.As(err).Kind != apierr.Validation {
		t.Fatalf("after delete: %v", err)
	}
}

// BenchmarkProvisionedUnit measures what one model unit (InstancesPerUnit
// instance, Concurrency 4 generations together) sustains: output tokens
// per minute with 8 callers keeping it busy.
func BenchmarkProvisionedUnit(b *testing.B) {
	s := newStoriesTB(b, Config{Concurrency: 4, CPUs: 2})
	ctx := context.Background()
	p, err := s.CreateProvisioned(ctx, "bench", "meta.stories", 1, "")
	if err != nil {
		b.Fatal(err)
	}
	inService(b, s, p.ID)
	var tokens atomic.Int64
	b.SetParallelism(4) // 4 × GOMAXPROCS callers
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := s.Generate(ctx, &Request{ModelID: ProvisionedRef + p.ID, Prompt: "Once upon a time",
				Params: llama.Params{MaxTokens: 128, Temperature: 0.8, TopP: 0.9}}, nil)
			if err != nil {
				b.Error(err)
				return
			}
			tokens.Add(int64(r.InputTokens + r.OutputTokens))
		}
	})
	b.ReportMetric(float64(tokens.Load())/time.Since(t0).Minutes(), "tokens/min")
}
