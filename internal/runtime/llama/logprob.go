package llama

import "math"

// logprobs returns id's log-probability under the distribution of the raw
// logits (log-softmax, computed in float64) and the n most likely tokens,
// most likely first (ties: lower id first).
func logprobs(logits []float32, id, n int) (float64, []TokenLogprob) {
	maxl := math.Inf(-1)
	for _, l := range logits {
		maxl = max(maxl, float64(l))
	}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l) - maxl)
	}
	logZ := maxl + math.Log(sum)
	if n <= 0 {
		return float64(logits[id]) - logZ, nil
	}
	// Insertion into a short sorted list: O(vocab × n) at worst, about
	// O(vocab) in practice since few logits beat the n-th best.
	top := make([]TokenLogprob, 0, n)
	for i, l := range logits {
		v := float64(l)
		if len(top) == n && v <= top[n-1].Logprob {
			continue
		}
		at := len(top)
		for at > 0 && v > top[at-1].Logprob {
			at--
		}
		if len(top) < n {
			top = append(top, TokenLogprob{})
		}
		copy(top[at+1:], top[at:len(top)-1])
		top[at] = TokenLogprob{ID: i, Logprob: v}
	}
	for i := range top {
		top[i].Logprob -= logZ
	}
	return float64(logits[id]) - logZ, top
}
