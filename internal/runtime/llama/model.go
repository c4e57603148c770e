// Package llama is the pure-Go LLM runtime: it loads LLaMA-family models
// (architectures llama and qwen2) from GGUF files, tokenizes with the
// vocabulary the file carries (SentencePiece-style or byte-level BPE), runs
// the transformer on the CPU and samples tokens with the usual parameters.
// It serves them as a runtime.Model (SageMaker/TGI-style JSON, optionally
// streamed) and as a Generator for the LLM front ends.
//
// llama imports runtime and gguf only; it must not import pool, the mode
// services or any protocol adapter.
package llama

import (
	"errors"
	"fmt"
	"math"

	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/runtime"
)

// hparams are the architecture's hyper-parameters, read from the file.
type hparams struct {
	arch     string
	nEmbd    int
	nLayer   int
	nHead    int
	nHeadKV  int
	nFF      int
	nCtx     int
	nRot     int
	headDim  int
	nVocab   int
	eps      float32
	ropeBase float64
	ropeNeox bool // rotate pairs (i, i+nRot/2) instead of (2i, 2i+1)
	qkvBias  bool
}

// archTraits says whether an architecture has q/k/v biases and
// NEOX-style rope, and whether it is implemented at all.
func archTraits(arch string) (bias, neox bool, ok bool) {
	switch arch {
	case "llama":
		return false, false, true
	case "qwen2":
		return true, true, true
	}
	return false, false, false
}

func readHparams(f *gguf.File, maxCtx int) (hparams, error) {
	var h hparams
	h.arch, _ = f.String("general.architecture")
	bias, neox, ok := archTraits(h.arch)
	if !ok {
		return h, fmt.Errorf("%w: architecture %q (implemented: llama, qwen2)", runtime.ErrUnsupported, h.arch)
	}
	h.qkvBias, h.ropeNeox = bias, neox
	p := h.arch + "."
	need := func(key string, dst *int) error {
		v, ok := f.Int(p + key)
		if !ok || v <= 0 || v > 1<<24 {
			return fmt.Errorf("gguf key %s%s missing or invalid", p, key)
		}
		*dst = int(v)
		return nil
	}
	for _, k := range []struct {
		key string
		dst *int
	}{
		{"embedding_length", &h.nEmbd}, {"block_count", &h.nLayer}, {"attention.head_count", &h.nHead},
		{"feed_forward_length", &h.nFF}, {"context_length", &h.nCtx},
	} {
		if err := need(k.key, k.dst); err != nil {
			return h, err
		}
	}
	h.nHeadKV = h.nHead
	if v, ok := f.Int(p + "attention.head_count_kv"); ok {
		h.nHeadKV = int(v)
	}
	if h.nHeadKV <= 0 || h.nHead%h.nHeadKV != 0 || h.nEmbd%h.nHead != 0 {
		return h, fmt.Errorf("head counts %d/%d do not divide embedding %d", h.nHead, h.nHeadKV, h.nEmbd)
	}
	h.headDim = h.nEmbd / h.nHead
	h.nRot = h.headDim
	if v, ok := f.Int(p + "rope.dimension_count"); ok {
		h.nRot = int(v)
	}
	if h.nRot <= 0 || h.nRot > h.headDim || h.nRot%2 != 0 {
		return h, fmt.Errorf("rope.dimension_count %d invalid for head size %d", h.nRot, h.headDim)
	}
	h.eps = 1e-5
	if v, ok := f.Float(p + "attention.layer_norm_rms_epsilon"); ok {
		h.eps = float32(v)
	}
	h.ropeBase = 10000
	if v, ok := f.Float(p + "rope.freq_base"); ok && v > 0 {
		h.ropeBase = v
	}
	if st, ok := f.String(p + "rope.scaling.type"); ok && st != "none" {
		return h, fmt.Errorf("%w: rope scaling %q", runtime.ErrUnsupported, st)
	}
	if maxCtx > 0 && h.nCtx > maxCtx {
		h.nCtx = maxCtx
	}
	return h, nil
}

// matrix is a weight matrix of rows × cols in any supported type.
type matrix struct {
	t    *gguf.Tensor
	rows int
	cols int
	f32  []float32      // set for F32 tensors
	q8   *gguf.Q8Matrix // set for Q8_0 tensors
	k    *gguf.KMatrix  // set for Q4_K and Q6_K tensors
	rowB int            // bytes per row
}

// prepareQ8 sets m.q8 for a Q8_0 matrix (gguf.NewQ8Matrix, which repacks
// the rows for the AVX-512 VNNI kernel where the CPU has it) and m.k for
// a Q4_K or Q6_K matrix (gguf.NewKMatrix, likewise); the repacked copies
// are shared by every model loaded from f's mapping.
func (m *matrix) prepareQ8(f *gguf.File) error {
	var err error
	switch m.t.Type {
	case gguf.Q8_0:
		m.q8, err = f.Q8Matrix(m.t, m.rows, m.rowB)
	case gguf.Q4_K, gguf.Q6_K:
		m.k, err = f.KMatrix(m.t, m.rows, m.rowB)
	}
	if err != nil {
		return fmt.Errorf("tensor %s: %w", m.t.Name, err)
	}
	return nil
}

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    *matrix
	bq, bk, bv        []float32
	gate, up, down    *matrix
}

type weights struct {
	tokEmbd *matrix
	outNorm []float32
	output  *matrix
	layers  []layer
}

var errMissing = errors.New("missing tensor")

func loadWeights(f *gguf.File, h hparams) (*weights, error) {
	mat := func(name string, rows, cols int) (*matrix, error) {
		t, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("%w %s", errMissing, name)
		}
		if len(t.Dims) != 2 || t.Cols() != cols || t.Rows() != rows {
			return nil, fmt.Errorf("tensor %s has shape %v, want [%d %d]", name, t.Dims, cols, rows)
		}
		m := &matrix{t: t, rows: rows, cols: cols, rowB: t.Type.RowBytes(cols)}
		if t.Type == gguf.F32 {
			m.f32 = t.Float32s()
		}
		// The embedding table is only read by rows unless it is also the
		// classifier (tied), so it is prepared for products only then.
		if name != "token_embd.weight" {
			if err := m.prepareQ8(f); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	vec := func(name string, n int) ([]float32, error) {
		t, ok := f.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("%w %s", errMissing, name)
		}
		if t.Elements() != uint64(n) {
			return nil, fmt.Errorf("tensor %s has %d elements, want %d", name, t.Elements(), n)
		}
		return t.Decode(), nil
	}
	var w weights
	var err error
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("%w token_embd.weight", errMissing)
	}
	if len(emb.Dims) != 2 || emb.Cols() != h.nEmbd {
		return nil, fmt.Errorf("token_embd.weight has shape %v", emb.Dims)
	}
	if w.tokEmbd, err = mat("token_embd.weight", emb.Rows(), h.nEmbd); err != nil {
		return nil, err
	}
	if w.outNorm, err = vec("output_norm.weight", h.nEmbd); err != nil {
		return nil, err
	}
	if _, ok := f.Tensor("output.weight"); ok {
		if w.output, err = mat("output.weight", emb.Rows(), h.nEmbd); err != nil {
			return nil, err
		}
	} else {
		w.output = w.tokEmbd // tied embeddings
		if err := w.output.prepareQ8(f); err != nil {
			return nil, err
		}
	}
	kvDim := h.nHeadKV * h.headDim
	w.layers = make([]layer, h.nLayer)
	for i := range w.layers {
		l := &w.layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		steps := []func() error{
			func() (e error) { l.attnNorm, e = vec(p+"attn_norm.weight", h.nEmbd); return },
			func() (e error) { l.ffnNorm, e = vec(p+"ffn_norm.weight", h.nEmbd); return },
			func() (e error) { l.wq, e = mat(p+"attn_q.weight", h.nEmbd, h.nEmbd); return },
			func() (e error) { l.wk, e = mat(p+"attn_k.weight", kvDim, h.nEmbd); return },
			func() (e error) { l.wv, e = mat(p+"attn_v.weight", kvDim, h.nEmbd); return },
			func() (e error) { l.wo, e = mat(p+"attn_output.weight", h.nEmbd, h.nEmbd); return },
			func() (e error) { l.gate, e = mat(p+"ffn_gate.weight", h.nFF, h.nEmbd); return },
			func() (e error) { l.up, e = mat(p+"ffn_up.weight", h.nFF, h.nEmbd); return },
			func() (e error) { l.down, e = mat(p+"ffn_down.weight", h.nEmbd, h.nFF); return },
		}
		if h.qkvBias {
			steps = append(steps,
				func() (e error) { l.bq, e = vec(p+"attn_q.bias", h.nEmbd); return },
				func() (e error) { l.bk, e = vec(p+"attn_k.bias", kvDim); return },
				func() (e error) { l.bv, e = vec(p+"attn_v.bias", kvDim); return },
			)
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return nil, err
			}
		}
	}
	return &w, nil
}

// ropeTable holds the inverse frequencies base^(-2i/nRot).
func ropeFreqs(h hparams) []float64 {
	f := make([]float64, h.nRot/2)
	for i := range f {
		f[i] = math.Pow(h.ropeBase, -2*float64(i)/float64(h.nRot))
	}
	return f
}
