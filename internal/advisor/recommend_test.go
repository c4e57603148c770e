package advisor

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/cost"
	"github.com/inferbox/inferbox/internal/meter"
)

var rday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// scriptedLedger is a real ledger (SQLite through catalog.Open) with a day
// of traffic:
//   - "recs", real-time on one ml.m5.large all day ($0.115/h: $2.76), four
//     bursts (08:00, 12:00, 16:00, 20:00) of 900 requests 5 s apart, 4.32 s
//     each: busy 15,552 s of 86,400, idle 82%;
//   - "fraud", real-time on one ml.m5.large all day, a request every 5 s
//     all day, 4.5 s each: busy 90%;
//   - LLM rows on meta.llama3-8b-instruct-v1:0 (800 on-demand, 200 async,
//     3,000 input and 500 output tokens each) and 10 on
//     meta.llama3-70b-instruct-v1:0, which has no model-unit price.
func scriptedLedger(t *testing.T) *meter.Ledger {
	t.Helper()
	ctx := context.Background()
	s, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	clock := rday.Add(30 * time.Hour)
	l, err := meter.NewLedger(ctx, s.DB(), slog.New(slog.DiscardHandler), meter.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"recs", "fraud"} {
		l.InstanceStarted(meter.InstanceUsage{InstanceID: ep + "-1", Mode: "realtime", Resource: ep, Variant: "v1", InstanceType: "ml.m5.large", Start: rday})
		l.InstanceStopped(ep+"-1", rday.Add(24*time.Hour))
	}
	rec := func(n int, every time.Duration, v meter.Invocation, start time.Time) {
		for i := range n {
			v.Time = start.Add(time.Duration(i) * every)
			v.TotalLatency = v.ModelLatency
			v.Status = 200
			l.RecordInvocation(v)
		}
	}
	for _, h := range []int{8, 12, 16, 20} {
		rec(900, 5*time.Second, meter.Invocation{Mode: "realtime", Resource: "recs", Variant: "v1", InstanceType: "ml.m5.large",
			ModelLatency: 4320 * time.Millisecond, BytesIn: 2048}, rday.Add(time.Duration(h)*time.Hour))
	}
	rec(86400/5, 5*time.Second, meter.Invocation{Mode: "realtime", Resource: "fraud", Variant: "v1", InstanceType: "ml.m5.large",
		ModelLatency: 4500 * time.Millisecond}, rday)
	llm := meter.Invocation{Resource: "meta.llama3-8b-instruct-v1:0", InputTokens: 3000, OutputTokens: 500, ModelLatency: time.Second}
	llm.Mode = "genai"
	rec(800, time.Minute, llm, rday.Add(time.Hour))
	llm.Mode = "async"
	rec(200, time.Minute, llm, rday.Add(time.Hour))
	llm.Mode = "genai-batch" // already at the batch price: not counted
	rec(50, time.Minute, llm, rday.Add(time.Hour))
	rec(10, time.Minute, meter.Invocation{Mode: "genai", Resource: "meta.llama3-70b-instruct-v1:0", InputTokens: 100, OutputTokens: 100}, rday)
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRecommendFromLedger(t *testing.T) {
	l := scriptedLedger(t)
	rs, err := Recommend(context.Background(), l, book(t), RecommendOptions{From: rday, To: rday.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]Recommendation{}
	for _, r := range rs.Recommendations {
		byKind[r.Resource+" "+r.Kind] = r
		t.Log(r.Text)
	}

	t.Run("idle endpoint → serverless", func(t *testing.T) {
		r, ok := byKind["recs "+KindMode]
		if !ok {
			t.Fatalf("no recommendation for recs in %+v", rs.Recommendations)
		}
		// $2.76 recorded; serverless bills 3,600 × 4.32 s × 2 GB × $0.00002.
		if r.Suggested != ModeServerless || r.Nanodollars != 2_760_000_000 || r.AlternativeNanodollars != 622_080_000 {
			t.Errorf("recommendation %+v", r)
		}
		if want := 100 * (1 - 0.62208/2.76); math.Abs(r.SavingsPercent-want) > 1e-9 {
			t.Errorf("savings %v%%, want %v%%", r.SavingsPercent, want)
		}
		// One cold start per burst: 4 of 3,600 requests.
		want := "endpoint recs was idle 82% of the time: serverless would have cost $0.6221 (−77%) instead of $2.76, adding a cold start to 0.11% of requests"
		if r.Text != want {
			t.Errorf("text\n got %s\nwant %s", r.Text, want)
		}
		var rv EndpointReview
		for _, e := range rs.Endpoints {
			if e.Resource == "recs" {
				rv = e
			}
		}
		if math.Abs(rv.IdlePercent-82) > 1e-9 || rv.Invocations != 3600 || rv.MeanLatencyMs != 4320 || rv.MeanPayloadKB != 2 {
			t.Errorf("review %+v", rv)
		}
		for _, a := range rv.Alternatives {
			switch a.Mode {
			case ModeServerless:
				if math.Abs(a.ColdStartPercent-100*4.0/3600) > 1e-9 {
					t.Errorf("cold starts %v%%, want %v%%", a.ColdStartPercent, 100*4.0/3600)
				}
			case ModeAsync:
				if a.Fits {
					t.Errorf("async fits an interactive endpoint: %+v", a)
				}
			default:
				t.Errorf("alternative %s for a real-time endpoint", a.Mode)
			}
		}
	})

	t.Run("busy endpoint → none", func(t *testing.T) {
		if r, ok := byKind["fraud "+KindMode]; ok {
			t.Errorf("recommendation for the busy endpoint: %+v", r)
		}
		for _, e := range rs.Endpoints {
			if e.Resource == "fraud" {
				// serverless: 17,280 × 4.5 s × 2 GB × $0.00002 = $3.1104 > $2.76
				if math.Abs(e.IdlePercent-10) > 1e-9 || e.Alternatives[0].Nanodollars != 3_110_400_000 {
					t.Errorf("fraud review %+v", e)
				}
				return
			}
		}
		t.Error("fraud was not reviewed")
	})

	t.Run("LLM input tokens", func(t *testing.T) {
		// 1,000 on-demand requests (the batch rows excluded): 3M input
		// tokens at $0.0003/1K = $0.90, 500K output at $0.0006/1K = $0.30.
		r := byKind["meta.llama3-8b-instruct-v1:0 "+KindLLMInputTokens]
		if r.Nanodollars != 1_200_000_000 || r.AlternativeNanodollars != 1_200_000_000-225_000_000 {
			t.Errorf("input-token line %+v", r)
		}
		if !strings.Contains(r.Text, "input tokens are 75% of its $1.20 token cost") || !strings.Contains(r.Text, "trimming prompts by 25% would save $0.2250 (−18.8%)") {
			t.Errorf("text %q", r.Text)
		}
		b := byKind["meta.llama3-8b-instruct-v1:0 "+KindLLMBatch]
		// 200 async requests: $0.24, half at batch.
		if b.Nanodollars != 240_000_000 || b.AlternativeNanodollars != 120_000_000 || !strings.Contains(b.Text, "200 requests nobody waited on") {
			t.Errorf("batch line %+v", b)
		}
		p := byKind["meta.llama3-8b-instruct-v1:0 "+KindLLMProvisioned]
		// $1.20 a day is $36.50 a month; a model unit is $23.50 × 730.
		if p.Suggested != "" || p.Nanodollars != 36_500_000_000 || p.AlternativeNanodollars != 17_155_000_000_000 || !strings.Contains(p.Text, "stay on-demand") {
			t.Errorf("provisioned line %+v", p)
		}
		u := byKind["meta.llama3-70b-instruct-v1:0 "+KindLLMProvisioned]
		if u.Unpriced == "" || !strings.Contains(u.Text, "UNPRICED") || !strings.Contains(u.Text, "meta.llama3-70b-instruct-v1:0") {
			t.Errorf("unpriced provisioned line %+v", u)
		}
	})
}

func TestRecommendPeriodInvalid(t *testing.T) {
	l := scriptedLedger(t)
	_, err := Recommend(context.Background(), l, book(t), RecommendOptions{From: rday, To: rday})
	if !errors.Is(err, cost.ErrInvalid) || !strings.Contains(err.Error(), "to must be after from") {
		t.Errorf("err = %v, want cost.ErrInvalid naming the period", err)
	}
}
