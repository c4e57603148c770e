package llama

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestBatchEqualsSingle checks that a batch mixing a prompt chunk of one
// sequence with decode steps of two others gives every sequence exactly
// the logits it gets alone, token by token.
func TestBatchEqualsSingle(t *testing.T) {
	m := loadStories(t, 2)
	prompts := [][]int{{1, 403, 407, 261, 378}, {1, 300}, {1, 450, 300, 301}}
	alone := make([][]float32, len(prompts))
	for i, p := range prompts {
		l := logitsFor(m, p)
		alone[i] = l[len(l)-1]
	}
	// Sequences 1 and 2 have all but their last token in the cache; 0 is
	// processed whole, in the same batch as their last tokens.
	states := make([]*seqState, len(prompts))
	var sc scratch
	for i, p := range prompts {
		states[i] = m.newState()
		if i > 0 {
			m.forwardBatch(&sc, itemsOf([]*step{{s: states[i], tokens: p[:len(p)-1]}}))
		}
	}
	batch := []*step{
		{s: states[1], tokens: prompts[1][len(prompts[1])-1:], logits: true},
		{s: states[0], tokens: prompts[0], logits: true},
		{s: states[2], tokens: prompts[2][len(prompts[2])-1:], logits: true},
	}
	m.forwardBatch(&sc, itemsOf(batch))
	for i, s := range states {
		if !slices.Equal(s.logits, alone[i]) {
			t.Errorf("sequence %d: batched logits differ from its own", i)
		}
		if s.pos != len(prompts[i]) {
			t.Errorf("sequence %d at position %d, want %d", i, s.pos, len(prompts[i]))
		}
	}
}

// TestConcurrentMixedEqualsAlone runs generations with different prompts,
// lengths and sampling parameters concurrently (prompt chunks and decode
// steps of different sequences share batches) and checks each produces
// exactly what it produces alone.
func TestConcurrentMixedEqualsAlone(t *testing.T) {
	m := loadStories(t, 2)
	seed := uint64(11)
	long := strings.Repeat("The cat sat on the mat and looked at the big red ball. ", 8) // > one prefill chunk
	reqs := []*GenerateRequest{
		{Prompt: "Once upon a time", Params: Params{MaxTokens: 60}},
		{Prompt: long, Params: Params{MaxTokens: 40}},
		{Prompt: "Lily", Params: Params{Temperature: 0.8, TopK: 20, Seed: &seed, MaxTokens: 50}},
		{Prompt: "One day", Params: Params{MaxTokens: 5}},
		{Prompt: "The dog", Params: Params{Temperature: 1, TopP: 0.9, Seed: &seed, MaxTokens: 80, Stop: []string{"."}}},
		{Prompt: "Tom and", Params: Params{MaxTokens: 30}},
	}
	alone := make([]string, len(reqs))
	for i, r := range reqs {
		alone[i], _, _ = generateText(t, m, r)
	}
	for round := 0; round < 3; round++ {
		got := make([]string, len(reqs))
		var wg sync.WaitGroup
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var sb strings.Builder
				if _, err := m.Generate(context.Background(), r, func(tk Token) error { sb.WriteString(tk.Text); return nil }); err != nil {
					t.Error(err)
				}
				got[i] = sb.String()
			}()
		}
		wg.Wait()
		for i := range reqs {
			if got[i] != alone[i] {
				t.Errorf("round %d, request %d: concurrent %q\nalone %q", round, i, got[i], alone[i])
			}
		}
	}
}
