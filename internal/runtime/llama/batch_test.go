package llama

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
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

// TestBatchEqualsSingleQ8 checks, on a Q8_0 model (the VNNI kernel where
// the CPU has it; 263 vocabulary rows, so the classifier ends inside a
// group of 16), that decode steps of 2, 3, 8 and 9 sequences together
// (9: more than one kernel call of eight inputs), and their prompts
// processed in one batch, give every sequence exactly its logits alone.
func TestBatchEqualsSingleQ8(t *testing.T) { batchEqualsSingle(t, gguf.Q8_0) }

// TestBatchEqualsSingleK is TestBatchEqualsSingleQ8 for Q4_K and Q6_K
// models (gguf.KMatrix: the VNNI kernels where the CPU has them, 16 rows
// by up to 8 inputs, else the Go kernels row by row).
func TestBatchEqualsSingleK(t *testing.T) {
	for _, typ := range []gguf.TensorType{gguf.Q4_K, gguf.Q6_K} {
		t.Run(typ.String(), func(t *testing.T) { batchEqualsSingle(t, typ) })
	}
}

func batchEqualsSingle(t *testing.T, typ gguf.TensorType) {
	s := defaultSynth()
	s.typ = typ
	m, err := Load(gguf.NewRegistry(), s.write(t, t.TempDir()), 0, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if l := m.w.layers[0]; (typ == gguf.Q8_0 && l.wq.q8 == nil) || (typ != gguf.Q8_0 && l.wq.k == nil) {
		t.Fatalf("%s model without its prepared matrices", typ)
	}
	r := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{2, 3, 8, 9} {
		prompts := make([][]int, n)
		alone := make([][]float32, n)
		for i := range prompts {
			prompts[i] = []int{1}
			for k := 0; k < 1+r.IntN(4); k++ {
				prompts[i] = append(prompts[i], 3+r.IntN(260))
			}
			l := logitsFor(m, prompts[i])
			alone[i] = l[len(l)-1]
		}
		// Decode: every prompt but its last token alone, then the last
		// tokens of all n sequences in one batch.
		var sc scratch
		states := make([]*seqState, n)
		var steps []*step
		for i, p := range prompts {
			states[i] = m.newState()
			m.forwardBatch(&sc, itemsOf([]*step{{s: states[i], tokens: p[:len(p)-1]}}))
			steps = append(steps, &step{s: states[i], tokens: p[len(p)-1:], logits: true})
		}
		m.forwardBatch(&sc, itemsOf(steps))
		for i, st := range states {
			if !slices.Equal(st.logits, alone[i]) {
				t.Errorf("n=%d decode: sequence %d: batched logits differ from its own", n, i)
			}
		}
		// Prefill: all n prompts whole in one batch.
		steps = steps[:0]
		for i, p := range prompts {
			states[i] = m.newState()
			steps = append(steps, &step{s: states[i], tokens: p, logits: true})
		}
		m.forwardBatch(&sc, itemsOf(steps))
		for i, st := range states {
			if !slices.Equal(st.logits, alone[i]) {
				t.Errorf("n=%d prefill: sequence %d: batched logits differ from its own", n, i)
			}
		}
	}
}

// Models loaded from one registry share the repacked Q8_0 and K-quant
// matrices (one copy per mapped file, as they share the mapping); another
// registry's model has its own, and computes the same logits.
func TestPackShared(t *testing.T) {
	for _, c := range []struct {
		typ    gguf.TensorType
		packed func(*matrix) any
	}{
		{gguf.Q8_0, func(m *matrix) any { return m.q8 }},
		{gguf.Q4_K, func(m *matrix) any { return m.k }},
	} {
		t.Run(c.typ.String(), func(t *testing.T) {
			s := defaultSynth()
			s.typ = c.typ
			path := s.write(t, t.TempDir())
			reg := gguf.NewRegistry()
			load := func(reg *gguf.Registry) *Model {
				m, err := Load(reg, path, 0, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				return m
			}
			a, b, other := load(reg), load(reg), load(gguf.NewRegistry())
			pa, pb, po := c.packed(a.w.layers[0].wq), c.packed(b.w.layers[0].wq), c.packed(other.w.layers[0].wq)
			if reflect.ValueOf(pa).IsNil() || pa != pb || c.packed(a.w.output) != c.packed(b.w.output) {
				t.Errorf("two models of one registry: %p and %p, want one shared matrix", pa, pb)
			}
			if po == pa {
				t.Error("a model of another registry shares the matrix")
			}
			if got, want := logitsFor(b, []int{1, 5, 9}), logitsFor(other, []int{1, 5, 9}); !slices.Equal(got[2], want[2]) {
				t.Error("a model on the shared matrices computes other logits")
			}
		})
	}
}

// TestScaleMax: scaleMax scales like the plain loop and finds its maximum,
// at every length up to 40.
func TestScaleMax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 1; n <= 40; n++ {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 10)
		}
		want := slices.Clone(x)
		wantMax := float32(math.Inf(-1))
		for i := range want {
			want[i] *= 0.125
			wantMax = max(wantMax, want[i])
		}
		if got := scaleMax(x, 0.125); got != wantMax || !slices.Equal(x, want) {
			t.Fatalf("n=%d: max %v, want %v; values equal %v", n, got, wantMax, slices.Equal(x, want))
		}
	}
}
