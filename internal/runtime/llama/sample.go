package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/inferbox/inferbox/internal/gguf"
)

// Params are the sampling parameters of one generation. The zero value is
// greedy decoding until the context is full.
//
// Filters apply in llama.cpp's default order (common/sampling.cpp):
// penalties → top-k → top-p → min-p → temperature → draw. Temperature 0
// skips the draw and takes the most likely token after penalties.
type Params struct {
	// Temperature divides the logits before the draw; 0 means greedy.
	Temperature float64
	// TopK keeps the k most likely tokens; 0 or -1 disables.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches p, in (0, 1]; 1 disables. 0 means unset (1): front ends that
	// receive an explicit 0 must refuse it themselves.
	TopP float64
	// MinP drops tokens less likely than MinP × the most likely one; 0 disables.
	MinP float64
	// RepetitionPenalty divides positive (multiplies negative) logits of
	// tokens seen in the last PenaltyWindow tokens; 1 disables, 0 means unset.
	RepetitionPenalty float64
	// FrequencyPenalty is subtracted once per occurrence in the window;
	// PresencePenalty once if the token occurs at all. Range [-2, 2].
	FrequencyPenalty float64
	PresencePenalty  float64
	// Seed makes sampling reproducible; nil draws a random seed.
	Seed *uint64
	// MaxTokens bounds the generated tokens; 0 means until the context is full.
	MaxTokens int
	// Stop sequences end generation when they appear in the decoded text;
	// they are not part of the output.
	Stop []string
}

// PenaltyWindow is how many of the most recent tokens (prompt included)
// the penalties look at, as llama.cpp's penalty_last_n default.
const PenaltyWindow = 64

const maxStops = 16

// Validate checks the parameters; errors name the parameter.
func (p *Params) Validate() error {
	bad := func(name string, v any, want string) error {
		return fmt.Errorf("invalid %s %v: must be %s", name, v, want)
	}
	switch {
	case !(p.Temperature >= 0) || math.IsInf(p.Temperature, 0):
		return bad("temperature", p.Temperature, ">= 0")
	case p.TopK < -1:
		return bad("top_k", p.TopK, ">= 0 (0 or -1 disable it)")
	case !(p.TopP >= 0 && p.TopP <= 1):
		return bad("top_p", p.TopP, "in (0, 1]")
	case !(p.MinP >= 0 && p.MinP <= 1):
		return bad("min_p", p.MinP, "in [0, 1]")
	case !(p.RepetitionPenalty >= 0) || math.IsInf(p.RepetitionPenalty, 0):
		return bad("repetition_penalty", p.RepetitionPenalty, "> 0")
	case !(p.FrequencyPenalty >= -2 && p.FrequencyPenalty <= 2):
		return bad("frequency_penalty", p.FrequencyPenalty, "in [-2, 2]")
	case !(p.PresencePenalty >= -2 && p.PresencePenalty <= 2):
		return bad("presence_penalty", p.PresencePenalty, "in [-2, 2]")
	case p.MaxTokens < 0:
		return bad("max_tokens", p.MaxTokens, ">= 0")
	case len(p.Stop) > maxStops:
		return fmt.Errorf("invalid stop: at most %d sequences, got %d", maxStops, len(p.Stop))
	}
	for _, s := range p.Stop {
		if s == "" {
			return fmt.Errorf("invalid stop: empty sequence")
		}
	}
	return nil
}

type candidate struct {
	id    int
	logit float32
}

// sampler applies Params to logits. One per generation; not shared.
type sampler struct {
	p     Params
	rng   *rand.Rand
	cands []candidate
	probs []float64
	count map[int]int
}

func newSampler(p Params, seed uint64) *sampler {
	if p.TopP == 0 {
		p.TopP = 1
	}
	if p.RepetitionPenalty == 0 {
		p.RepetitionPenalty = 1
	}
	if p.TopK < 0 {
		p.TopK = 0
	}
	return &sampler{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), count: map[int]int{}}
}

// sample picks the next token. history is the sequence so far (prompt and
// generated tokens); logits are not modified.
func (s *sampler) sample(logits []float32, history []int) int {
	p := &s.p
	penalties := p.RepetitionPenalty != 1 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0
	if p.Temperature == 0 && !penalties {
		// Greedy without penalties: the first highest logit, without
		// building the candidate list (32,000 entries a token).
		return gguf.ArgMax(logits)
	}
	s.cands = s.cands[:0]
	for i, l := range logits {
		s.cands = append(s.cands, candidate{i, l})
	}
	c := s.cands
	if penalties {
		clear(s.count)
		for _, id := range history[max(0, len(history)-PenaltyWindow):] {
			s.count[id]++
		}
		for id, n := range s.count {
			l := c[id].logit
			if l <= 0 {
				l *= float32(p.RepetitionPenalty)
			} else {
				l /= float32(p.RepetitionPenalty)
			}
			l -= float32(float64(n)*p.FrequencyPenalty + p.PresencePenalty)
			c[id].logit = l
		}
	}
	if p.Temperature == 0 {
		best := 0
		for i := range c {
			if c[i].logit > c[best].logit {
				best = i
			}
		}
		return c[best].id
	}
	if p.TopK > 0 || p.TopP < 1 || p.MinP > 0 {
		slices.SortFunc(c, func(a, b candidate) int {
			switch {
			case a.logit > b.logit:
				return -1
			case a.logit < b.logit:
				return 1
			}
			return a.id - b.id
		})
	}
	if p.TopK > 0 && p.TopK < len(c) {
		c = c[:p.TopK]
	}
	if p.TopP < 1 {
		probs := s.softmax(c, 1)
		var cum float64
		keep := len(c)
		for i, pr := range probs {
			cum += pr
			if cum >= p.TopP {
				keep = i + 1
				break
			}
		}
		c = c[:keep]
	}
	if p.MinP > 0 {
		floor := c[0].logit + float32(math.Log(p.MinP))
		keep := 1
		for keep < len(c) && c[keep].logit >= floor {
			keep++
		}
		c = c[:keep]
	}
	probs := s.softmax(c, p.Temperature)
	r := s.rng.Float64()
	var cum float64
	for i, pr := range probs {
		cum += pr
		if r < cum {
			return c[i].id
		}
	}
	return c[len(c)-1].id
}

// softmax returns the probabilities of c's logits divided by temp.
func (s *sampler) softmax(c []candidate, temp float64) []float64 {
	s.probs = s.probs[:0]
	maxl := float64(c[0].logit)
	for _, x := range c {
		maxl = max(maxl, float64(x.logit))
	}
	var sum float64
	for _, x := range c {
		e := math.Exp((float64(x.logit) - maxl) / temp)
		s.probs = append(s.probs, e)
		sum += e
	}
	for i := range s.probs {
		s.probs[i] /= sum
	}
	return s.probs
}
