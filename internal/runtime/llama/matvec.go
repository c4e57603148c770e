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
func (m *matrix) mulMat(out, in [][]float32, threads int, sc *scratch) {
	work := sc.work
	var q8 []gguf.Q8Vec
	if m.q8 != nil || m.k != nil {
		for len(sc.q8) < len(in) {
			sc.q8 = append(sc.q8, gguf.Q8Vec{})
		}
		q8 = sc.q8[:len(in)]
		for i, x := range in {
			gguf.QuantizeQ8(x[:m.cols], &q8[i])
		}
	}
	split := m.rows*m.cols*len(in) >= parallelMin && m.rows >= 2*threads
	// Row ranges are multiples of 16 rows so workers do not share cache
	// lines of the outputs.
	blocks := (m.rows + 15) / 16
	parallel(blocks, threads, split, func(w, lo, hi int) {
		if q8 != nil {
			m.rowsQ8(out, q8, lo*16, min(hi*16, m.rows))
			return
		}
		m.rowsRange(out, in, lo*16, min(hi*16, m.rows), work[w])
	})
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

// rowsQ8 computes rows [lo, hi) of every product of a Q8_0 matrix with
// quantized inputs (gguf.Q8Matrix: with AVX-512 VNNI 16 rows by up to
// eight inputs per kernel call, else gguf.MulMatQ8's two rows by four),
// or of a Q4_K or Q6_K matrix (gguf.KMatrix).
func (m *matrix) rowsQ8(out [][]float32, in []gguf.Q8Vec, lo, hi int) {
	if m.k != nil {
		m.k.MulMat(out, lo, hi, in)
		return
	}
	m.q8.MulMat(out, lo, hi, in)
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
