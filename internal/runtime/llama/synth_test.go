package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
)

// synth describes a small random-weight model written by the tests.
type synth struct {
	arch                               string
	typ                                gguf.TensorType
	nEmbd, nLayer, nHead, nHeadKV, nFF int
	tied                               bool
	seed                               uint64
	ctx                                int      // context length; 0 means 128
	vocabExtra                         []string // normal tokens after the specials and bytes
	extraKV                            map[string]any
	// mutate, when set, may change a tensor's values before it is written.
	mutate func(name string, vals []float32)
}

func defaultSynth() synth {
	return synth{arch: "llama", typ: gguf.F32, nEmbd: 256, nLayer: 2, nHead: 4, nHeadKV: 2, nFF: 512, seed: 7,
		vocabExtra: []string{"▁a", "▁b", "ab", "▁ab"}}
}

// spmVocab returns <unk>, <s>, </s>, 256 byte tokens and extra.
func spmVocab(extra []string) (tokens []string, scores []float32, types []int32) {
	tokens = []string{"<unk>", "<s>", "</s>"}
	types = []int32{tokUnknown, tokControl, tokControl}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, tokByte)
	}
	for _, e := range extra {
		tokens = append(tokens, e)
		types = append(types, tokNormal)
	}
	scores = make([]float32, len(tokens))
	for i := range extra {
		scores[259+i] = -float32(i)
	}
	return
}

// write writes the model to dir and returns its path.
func (s synth) write(t testing.TB, dir string) string {
	t.Helper()
	r := rand.New(rand.NewPCG(s.seed, 1))
	w := &gguf.Writer{}
	p := s.arch + "."
	w.Set("general.architecture", s.arch)
	ctx := s.ctx
	if ctx == 0 {
		ctx = 128
	}
	w.Set(p+"context_length", uint32(ctx))
	w.Set(p+"embedding_length", uint32(s.nEmbd))
	w.Set(p+"block_count", uint32(s.nLayer))
	w.Set(p+"feed_forward_length", uint32(s.nFF))
	w.Set(p+"attention.head_count", uint32(s.nHead))
	w.Set(p+"attention.head_count_kv", uint32(s.nHeadKV))
	w.Set(p+"attention.layer_norm_rms_epsilon", float32(1e-5))
	w.Set(p+"rope.freq_base", float32(10000))
	tokens, scores, types := spmVocab(s.vocabExtra)
	w.Set("tokenizer.ggml.model", "llama")
	w.Set("tokenizer.ggml.tokens", tokens)
	w.Set("tokenizer.ggml.scores", scores)
	w.Set("tokenizer.ggml.token_type", types)
	w.Set("tokenizer.ggml.bos_token_id", uint32(1))
	w.Set("tokenizer.ggml.eos_token_id", uint32(2))
	for k, v := range s.extraKV {
		w.Set(k, v)
	}
	rnd := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * scale)
		}
		return v
	}
	ones := func(n int) []float32 {
		v := rnd(n, 0.1)
		for i := range v {
			v[i] += 1
		}
		return v
	}
	add := func(name string, typ gguf.TensorType, vals []float32, dims ...uint64) {
		if s.mutate != nil {
			s.mutate(name, vals)
		}
		if err := w.AddFloat32(name, typ, dims, vals); err != nil {
			t.Fatal(err)
		}
	}
	vocab := len(tokens)
	E, F := s.nEmbd, s.nFF
	kv := s.nHeadKV * (E / s.nHead)
	ws := 1 / math.Sqrt(float64(E))
	add("token_embd.weight", s.typ, rnd(vocab*E, 1), uint64(E), uint64(vocab))
	add("output_norm.weight", gguf.F32, ones(E), uint64(E))
	if !s.tied {
		add("output.weight", s.typ, rnd(vocab*E, ws), uint64(E), uint64(vocab))
	}
	for l := 0; l < s.nLayer; l++ {
		b := fmt.Sprintf("blk.%d.", l)
		add(b+"attn_norm.weight", gguf.F32, ones(E), uint64(E))
		add(b+"ffn_norm.weight", gguf.F32, ones(E), uint64(E))
		add(b+"attn_q.weight", s.typ, rnd(E*E, ws), uint64(E), uint64(E))
		add(b+"attn_k.weight", s.typ, rnd(kv*E, ws), uint64(E), uint64(kv))
		add(b+"attn_v.weight", s.typ, rnd(kv*E, ws), uint64(E), uint64(kv))
		add(b+"attn_output.weight", s.typ, rnd(E*E, ws), uint64(E), uint64(E))
		add(b+"ffn_gate.weight", s.typ, rnd(F*E, ws), uint64(E), uint64(F))
		add(b+"ffn_up.weight", s.typ, rnd(F*E, ws), uint64(E), uint64(F))
		add(b+"ffn_down.weight", s.typ, rnd(E*F, 1/math.Sqrt(float64(F))), uint64(F), uint64(E))
		if s.arch == "qwen2" {
			add(b+"attn_q.bias", gguf.F32, rnd(E, 0.5), uint64(E))
			add(b+"attn_k.bias", gguf.F32, rnd(kv, 0.5), uint64(kv))
			add(b+"attn_v.bias", gguf.F32, rnd(kv, 0.5), uint64(kv))
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.gguf", s.arch, s.typ, s.seed))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// logitsFor runs ids through m and returns the logits after each position.
func logitsFor(m *Model, ids []int) [][]float32 {
	s := m.newState()
	var out [][]float32
	for _, id := range ids {
		m.forward(s, id, true)
		out = append(out, append([]float32(nil), s.logits...))
	}
	return out
}

func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(a[i]) * float64(a[i])
	}
	return math.Sqrt(num / den)
}

// TestQuantizedForwardMatchesF32 writes the same random weights in every
// supported type and checks the logits stay within a relative error of
// the F32 model's. The bounds follow each format's resolution on random
// Gaussian weights (4-bit formats lose about 10% per matrix, compounding
// to 20-30% over two layers); a wrong block layout gives errors above 100%.
func TestQuantizedForwardMatchesF32(t *testing.T) {
	dir := t.TempDir()
	reg := gguf.NewRegistry()
	ids := []int{1, 260, 100, 262, 50, 261}
	base := defaultSynth()
	ref, err := Load(reg, base.write(t, dir), 0, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want := logitsFor(ref, ids)
	tol := map[gguf.TensorType]float64{gguf.F16: 0.005, gguf.BF16: 0.03, gguf.Q8_0: 0.03, gguf.Q6_K: 0.08, gguf.Q4_0: 0.4, gguf.Q4_K: 0.4}
	for typ, bound := range tol {
		t.Run(typ.String(), func(t *testing.T) {
			s := base
			s.typ = typ
			m, err := Load(reg, s.write(t, dir), 0, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got := logitsFor(m, ids)
			for i := range got {
				if e := relErr(want[i], got[i]); e > bound {
					t.Errorf("position %d: relative logit error %.4f > %.4f", i, e, bound)
				} else if i == len(got)-1 {
					t.Logf("relative logit error %.4f (bound %.2f)", e, bound)
				}
			}
		})
	}
}

func TestArchitectures(t *testing.T) {
	dir := t.TempDir()
	reg := gguf.NewRegistry()
	q := defaultSynth()
	q.arch, q.tied = "qwen2", true
	m, err := Load(reg, q.write(t, dir), 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.h.ropeNeox || !m.h.qkvBias || m.w.output != m.w.tokEmbd {
		t.Errorf("qwen2 traits not applied: %+v", m.h)
	}
	l := logitsFor(m, []int{1, 260})
	if math.IsNaN(float64(l[1][0])) {
		t.Error("NaN logits")
	}
	m.Close()

	u := defaultSynth()
	u.arch = "gptx"
	_, err = Load(reg, u.write(t, dir), 0, 1, nil)
	if err == nil || !strings.Contains(err.Error(), `"gptx"`) {
		t.Fatalf("unknown architecture: err = %v, want it named", err)
	}
}
