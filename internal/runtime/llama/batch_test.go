package llama

import (
	"slices"
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
