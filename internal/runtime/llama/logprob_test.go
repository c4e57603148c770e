package llama

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/inferbox/inferbox/internal/runtime"
)

// TestLogprobsAreLogSoftmax checks the reported log-probabilities against
// a log-softmax computed here from logits of an independent, token-by-token
// forward pass over the same sequence: the sampled token's and the top
// alternatives' (ids and order), on a sampled (not greedy) generation with
// a repetition penalty, which must not change what is reported.
func TestLogprobsAreLogSoftmax(t *testing.T) {
	m := loadStories(t, 1)
	prompt := m.Tokenizer().Encode("Once upon a time", true)
	seed := uint64(3)
	req := &GenerateRequest{Tokens: prompt, Logprobs: true, TopLogprobs: 5,
		Params: Params{Temperature: 1.2, RepetitionPenalty: 1.3, Seed: &seed, MaxTokens: 24}}
	var got []Token
	if _, err := m.Generate(context.Background(), req, func(tk Token) error {
		got = append(got, tk)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ids := slices.Clone(prompt)
	for _, tk := range got {
		ids = append(ids, tk.ID)
	}
	all := logitsFor(m, ids[:len(ids)-1])
	notTop := 0
	for i, tk := range got {
		logits := all[len(prompt)-1+i]
		// log p(j) = log(exp(l_j - l_0) / Σ exp(l_k - l_0)): no shared code
		// with logprobs(), a different reference point.
		var sum float64
		for _, l := range logits {
			sum += math.Exp(float64(l) - float64(logits[0]))
		}
		lp := func(j int) float64 { return math.Log(math.Exp(float64(logits[j])-float64(logits[0])) / sum) }
		if d := math.Abs(tk.Logprob - lp(tk.ID)); d > 1e-6 || !(tk.Logprob <= 0) {
			t.Errorf("token %d (id %d): logprob %v, log-softmax %v", i, tk.ID, tk.Logprob, lp(tk.ID))
		}
		order := make([]int, len(logits))
		for j := range order {
			order[j] = j
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case logits[a] > logits[b]:
				return -1
			case logits[a] < logits[b]:
				return 1
			}
			return 0
		})
		if len(tk.Top) != 5 {
			t.Fatalf("token %d: %d alternatives, want 5", i, len(tk.Top))
		}
		for r, alt := range tk.Top {
			if alt.ID != order[r] || math.Abs(alt.Logprob-lp(order[r])) > 1e-6 {
				t.Errorf("token %d rank %d: %+v, want id %d logprob %v", i, r, alt, order[r], lp(order[r]))
			}
		}
		if tk.ID != order[0] {
			notTop++
		}
	}
	if notTop == 0 {
		t.Errorf("every sampled token was the most likely one: the test did not exercise sampling")
	}
}

func TestLogprobsOffAndRange(t *testing.T) {
	m := loadStories(t, 1)
	_, err := m.Generate(context.Background(), &GenerateRequest{Prompt: "Once", TopLogprobs: 21, Logprobs: true,
		Params: Params{MaxTokens: 2}}, func(Token) error { return nil })
	var me *runtime.ModelError
	if !errors.As(err, &me) || me.StatusCode != 400 {
		t.Fatalf("top_logprobs 21: %v, want a 400 ModelError", err)
	}
	if _, err := m.Generate(context.Background(), &GenerateRequest{Prompt: "Once", Params: Params{MaxTokens: 4}},
		func(tk Token) error {
			if tk.Logprob != 0 || tk.Top != nil {
				t.Errorf("logprobs reported without being asked: %+v", tk)
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkGenerateLogprobs is BenchmarkGenerate (threads=1) with
// logprobs and 20 alternatives asked for every token: the cost of
// asking, next to BenchmarkGenerate's cost of not asking.
func BenchmarkGenerateLogprobs(b *testing.B) {
	m := loadStories(b, 1)
	prompt := m.Tokenizer().Encode("Once upon a time", true)
	req := &GenerateRequest{Tokens: prompt, Params: Params{MaxTokens: 256 - len(prompt)}, Logprobs: true, TopLogprobs: MaxTopLogprobs}
	tokens := 0
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u, err := m.Generate(context.Background(), req, func(Token) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		tokens += u.OutputTokens
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
	b.ReportMetric(float64(tokens)/(cpuSeconds()-cpu0), "tok/cpu-s")
}
