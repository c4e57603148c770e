package llama

import (
	"github.com/inferbox/inferbox/internal/gguf"
)

// parallelMin is the work (matrix elements × inputs) below which a product
// runs on the calling goroutine: for small products starting goroutines
// costs more than it saves.
const parallelMin = 1 << 15

// mulMat computes out[i] = m·in[i] for every input. Each row of m is read
// once and multiplied with every input while it is in cache, so decoding n
// sequences together (or n prompt positions) costs about one pass over the
// weights. Rows are split across up to threads goroutines for large
// products. Each output element is computed exactly as a single mat-vec
// computes it, so batching does not change results.
// sc.work holds one buffer of at least workSize(len(in)) per thread.
//
// Q8_0 products quantize each input once, as llama.cpp does, into blocks
// of 32 int8 values with a scale (gguf.QuantizeQ8), and multiply int8 by
// int8 (gguf.Q8Matrix: with AVX-512 VNNI 16 rows by up to 8 inputs per
// kernel call, every value bit for bit gguf.DotQ8's), for a relative
// logit error of about 0.5 % more (TestQuantizedForwardMatchesF32).
// Q4_K and Q6_K products quantize their inputs the same way and multiply
// the weights' codes by int8 in int32 per sub-block (gguf.KMatrix, as
// llama.cpp's q4_K/q6_K × q8_K dot products do).
func (m *matrix) mulMat(out [][]float32, in *inputs, threads int, sc *scratch) {
	work := sc.work
	n := len(in.src)
	var q8 []gguf.Q8Vec
	var off *gguf.KOffsets
	if m.q8 != nil || m.k != nil {
		q8 = in.quantized(m.cols, threads)
		if m.k != nil {
			off = in.offsets(m, threads)
		}
	}
	split := m.rows*m.cols*n >= parallelMin && m.rows >= 2*threads
	// Row ranges are multiples of 16 rows so workers do not share cache
	// lines of the outputs.
	blocks := (m.rows + 15) / 16
	parallel(blocks, threads, split, func(w, lo, hi int) {
		lo, hi = lo*16, min(hi*16, m.rows)
		switch {
		case m.k != nil:
			m.k.MulMatOffsets(out, lo, hi, q8, off)
		case m.q8 != nil:
			m.q8.MulMat(out, lo, hi, q8)
		default:
			m.rowsRange(out, in.src, lo, hi, work[w])
		}
	})
}

// inputs are the inputs of one or more products with the same inputs (wq,
// wk and wv; gate and up), quantized once (gguf.QuantizeQ8) when a
// quantized matrix first needs them, with their Q4_K and Q6_K offsets
// (gguf.KOffsets) computed once per type and width, both split across
// the threads by input.
type inputs struct {
	src  [][]float32
	cols int // the width quantized, 0 before
	q8   []gguf.Q8Vec
	offs []kOffsets
}

// kOffsets is the offsets of the inputs for matrices of one type and width.
type kOffsets struct {
	typ   gguf.TensorType
	cols  int
	valid bool // computed for the current inputs
	o     gguf.KOffsets
}

// reset makes in the inputs src, keeping its storage.
func (in *inputs) reset(src [][]float32) *inputs {
	in.src, in.cols = src, 0
	for i := range in.offs {
		in.offs[i].valid = false
	}
	return in
}

// quantized returns the first cols values of each input quantized.
func (in *inputs) quantized(cols, threads int) []gguf.Q8Vec {
	n := len(in.src)
	for len(in.q8) < n {
		in.q8 = append(in.q8, gguf.Q8Vec{})
	}
	q8 := in.q8[:n]
	if in.cols != cols {
		parallel(n, threads, n*cols >= parallelMin, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				gguf.QuantizeQ8(in.src[i][:cols], &q8[i])
			}
		})
		in.cols = cols
	}
	return q8
}

// offsets returns the quantized inputs' offsets for m (a Q4_K or Q6_K
// matrix); quantized must have been called for m's width.
func (in *inputs) offsets(m *matrix, threads int) *gguf.KOffsets {
	typ := m.k.Type()
	var ko *kOffsets
	for i := range in.offs {
		if e := &in.offs[i]; e.typ == typ && e.cols == m.cols {
			if e.valid {
				return &e.o
			}
			ko = e
			break
		}
	}
	if ko == nil {
		in.offs = append(in.offs, kOffsets{typ: typ, cols: m.cols})
		ko = &in.offs[len(in.offs)-1]
	}
	q8 := in.q8[:len(in.src)]
	m.k.Offsets(q8, 0, 0, &ko.o)
	parallel(len(q8), threads, len(q8)*m.cols >= parallelMin, func(_, lo, hi int) {
		m.k.Offsets(q8, lo, hi, &ko.o)
	})
	ko.valid = true
	return &ko.o
}

// rowsRange computes rows [lo, hi) of every product. F32 products are
// gguf.MulMatF32 (blocks of rows kept in L1 while every input passes over
// them, four rows by four inputs in registers); quantized rows are taken
// in blocks of rowBlock the same way.
func (m *matrix) rowsRange(out, in [][]float32, lo, hi int, work []float32) {
	c := m.cols
	if m.f32 != nil {
		gguf.MulMatF32(out, m.f32, c, lo, hi, in)
		return
	}
	// Quantized rows are decoded a chunk at a time into buf and each chunk
	// serves every input.
	buf, sums := work[:gguf.DotChunk], work[gguf.DotChunk:gguf.DotChunk+len(in)]
	for rb := lo; rb < hi; rb += rowBlock {
		re := min(rb+rowBlock, hi)
		for r := rb; r < re; r++ {
			gguf.DotMany(m.t.Type, m.t.Data[r*m.rowB:(r+1)*m.rowB], in, sums, buf)
			for i, v := range sums {
				out[i][r] = v
			}
		}
	}
}

// workSize is the per-thread scratch (elements) a product with n inputs needs.
func workSize(n int) int { return gguf.DotChunk + n }

// rowBlock is how many weight rows one pass over the inputs covers.
const rowBlock = 16

// row decodes row r into dst (used for the embedding lookup).
func (m *matrix) row(r int, dst []float32) {
	if m.f32 != nil {
		copy(dst, m.f32[r*m.cols:(r+1)*m.cols])
		return
	}
	gguf.Dequantize(m.t.Type, m.t.Data[r*m.rowB:(r+1)*m.rowB], dst)
}
