package gguf

import "encoding/binary"

// DotF32 returns the dot product of a and b[:len(a)]. On amd64 with AVX2
// and FMA it is this package's assembly kernel (four 8-lane FMA
// accumulators); elsewhere gonum's Sdot (SSE assembly on amd64 without
// AVX2, pure Go on other architectures or with -tags purego). See
// docs/llm-engine.md for the measurements.
func DotF32(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return dotF32(a, b)
}

// MulRowsF32 sets out[r] to the dot product of row r of m (len(out) rows
// of cols values, row-major) with x[:cols]. On amd64 with AVX-512 it
// multiplies four rows at a time, so each load of x serves four rows and
// the four sums are reduced together; elsewhere it is DotF32 per row. A
// row's result depends only on the row and x, never on which rows are
// computed with it.
func MulRowsF32(out, m []float32, cols int, x []float32) {
	MulRowsStrideF32(out, m, cols, cols, x)
}

// MulRowsStrideF32 is MulRowsF32 for rows that start stride elements
// apart: row r is m[r*stride : r*stride+cols] (the keys of one attention
// head in a KV cache, for instance).
func MulRowsStrideF32(out, m []float32, stride, cols int, x []float32) {
	if len(out) == 0 || cols == 0 {
		clear(out)
		return
	}
	if stride < cols || len(m) < (len(out)-1)*stride+cols || len(x) < cols {
		panic("gguf: MulRowsF32 with short matrix or vector")
	}
	mulRowsF32(out, m, stride, cols, x)
}

// mulMatBlock is how many rows MulMatF32 keeps in cache while every input
// passes over them (16 rows of 288 floats are 18 KB).
const mulMatBlock = 16

// MulMatF32 sets outs[i][r] to the dot product of row r of m (rows of
// cols values, row-major) with xs[i][:cols], for every input i and every
// row r in [lo, hi). On amd64 with AVX-512 it multiplies four rows by four
// inputs at a time, so each row is read from memory once for all inputs
// and used from registers for four of them. Every value is exactly what
// MulRowsF32 computes for that row and input alone: batching never
// changes results.
func MulMatF32(outs [][]float32, m []float32, cols, lo, hi int, xs [][]float32) {
	if hi <= lo || len(xs) == 0 {
		return
	}
	if cols == 0 {
		for _, o := range outs[:len(xs)] {
			clear(o[lo:hi])
		}
		return
	}
	if len(m) < hi*cols || len(outs) < len(xs) {
		panic("gguf: MulMatF32 with short matrix or outputs")
	}
	for i, x := range xs {
		if len(x) < cols || len(outs[i]) < hi {
			panic("gguf: MulMatF32 with short input or output")
		}
	}
	mulMatF32(outs, m, cols, lo, hi, xs)
}

// dotF32Go is the pure-Go kernel DotF32 was measured against: eight
// independent accumulators so the loop is not bound by one add chain.
func dotF32Go(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		x := a[i : i+8 : i+8]
		y := b[i : i+8 : i+8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// Dot returns the dot product of one encoded row of type t (whole blocks)
// with x, decoding one block at a time, never the whole row.
func Dot(t TensorType, row []byte, x []float32) float32 {
	switch t {
	case F32:
		return DotF32(bytesAsF32(row), x)
	case F16:
		return dotF16(row, x)
	case BF16:
		return dotBF16(row, x)
	case Q8_0:
		return dotQ80(row, x)
	case Q4_0:
		return dotQ40(row, x)
	case Q4_K:
		return dotK(row, x, 144, dequantQ4K)
	case Q6_K:
		return dotK(row, x, 210, dequantQ6K)
	}
	panic("gguf: Dot of unsupported type " + t.String())
}

func dotF16(row []byte, x []float32) float32 {
	var s0, s1 float32
	n := len(row) / 2
	x = x[:n]
	i := 0
	for ; i+2 <= n; i += 2 {
		s0 += F16ToF32(binary.LittleEndian.Uint16(row[2*i:])) * x[i]
		s1 += F16ToF32(binary.LittleEndian.Uint16(row[2*i+2:])) * x[i+1]
	}
	if i < n {
		s0 += F16ToF32(binary.LittleEndian.Uint16(row[2*i:])) * x[i]
	}
	return s0 + s1
}

func dotBF16(row []byte, x []float32) float32 {
	var s0, s1 float32
	n := len(row) / 2
	x = x[:n]
	i := 0
	for ; i+2 <= n; i += 2 {
		s0 += BF16ToF32(binary.LittleEndian.Uint16(row[2*i:])) * x[i]
		s1 += BF16ToF32(binary.LittleEndian.Uint16(row[2*i+2:])) * x[i+1]
	}
	if i < n {
		s0 += BF16ToF32(binary.LittleEndian.Uint16(row[2*i:])) * x[i]
	}
	return s0 + s1
}

func dotQ80(row []byte, x []float32) float32 {
	var sum float32
	nb := len(row) / 34
	x = x[:nb*32]
	for b := 0; b < nb; b++ {
		blk := row[b*34 : b*34+34 : b*34+34]
		q := blk[2:34:34]
		xx := x[b*32 : b*32+32 : b*32+32]
		var s0, s1, s2, s3 float32
		for j := 0; j < 32; j += 4 {
			s0 += float32(int8(q[j])) * xx[j]
			s1 += float32(int8(q[j+1])) * xx[j+1]
			s2 += float32(int8(q[j+2])) * xx[j+2]
			s3 += float32(int8(q[j+3])) * xx[j+3]
		}
		sum += F16ToF32(binary.LittleEndian.Uint16(blk)) * ((s0 + s1) + (s2 + s3))
	}
	return sum
}

func dotQ40(row []byte, x []float32) float32 {
	var sum float32
	nb := len(row) / 18
	x = x[:nb*32]
	for b := 0; b < nb; b++ {
		blk := row[b*18 : b*18+18 : b*18+18]
		q := blk[2:18:18]
		lo := x[b*32 : b*32+16 : b*32+16]
		hi := x[b*32+16 : b*32+32 : b*32+32]
		var s0, s1, s2, s3 float32
		for j := 0; j < 16; j += 2 {
			s0 += float32(int(q[j]&0xf)-8) * lo[j]
			s1 += float32(int(q[j]>>4)-8) * hi[j]
			s2 += float32(int(q[j+1]&0xf)-8) * lo[j+1]
			s3 += float32(int(q[j+1]>>4)-8) * hi[j+1]
		}
		sum += F16ToF32(binary.LittleEndian.Uint16(blk)) * ((s0 + s1) + (s2 + s3))
	}
	return sum
}

// dotK handles the 256-element super-block types by decoding one block into
// a stack buffer at a time.
func dotK(row []byte, x []float32, blockBytes int, dec func([]byte, []float32)) float32 {
	var buf [qkK]float32
	var sum float32
	nb := len(row) / blockBytes
	for b := 0; b < nb; b++ {
		dec(row[b*blockBytes:(b+1)*blockBytes], buf[:])
		sum += dotF32Go(buf[:], x[b*qkK:(b+1)*qkK]) // DotF32 would move buf to the heap
	}
	return sum
}

// DotChunk is how many elements DotMany decodes at a time: one K-quant
// super-block, or eight 32-element blocks.
const DotChunk = 256

// DotMany sets sums[i] to the dot product of one encoded row of type t
// (whole blocks) with xs[i], for every input. It decodes the row DotChunk
// elements at a time into a stack buffer (never the whole row) and uses
// each decoded chunk for every input, so n inputs cost one decode. The
// result for one input does not depend on the others. buf is scratch of
// at least DotChunk elements (a stack array would escape to the heap
// through the assembly kernel).
func DotMany(t TensorType, row []byte, xs [][]float32, sums, buf []float32) {
	if t == F32 {
		f := bytesAsF32(row)
		for i, x := range xs {
			sums[i] = DotF32(f, x)
		}
		return
	}
	buf = buf[:DotChunk]
	tr := t.traits()
	n := len(row) / tr.blockBytes * tr.blockSize
	sums = sums[:len(xs)]
	clear(sums)
	for off := 0; off < n; off += DotChunk {
		k := min(DotChunk, n-off)
		Dequantize(t, row[t.RowBytes(off):t.RowBytes(off+k)], buf[:k])
		for i, x := range xs {
			sums[i] += DotF32(buf[:k], x[off:off+k])
		}
	}
}

// WeightedSumF32 sets out[j] to Σ_r w[r]·m[r*stride+j] for j < len(out):
// the sum of len(w) rows, stride elements apart, weighted by w (the
// attention-weighted values of one head in a KV cache). On amd64 with
// AVX-512 it keeps 64 columns in registers over all the rows.
func WeightedSumF32(out, m []float32, stride int, w []float32) {
	if len(w) == 0 || len(out) == 0 {
		clear(out)
		return
	}
	if stride < len(out) || len(m) < (len(w)-1)*stride+len(out) {
		panic("gguf: WeightedSumF32 with short matrix")
	}
	weightedSumF32(out, m, stride, w)
}

// weightedSumGo is WeightedSumF32 in pure Go.
func weightedSumGo(out, m []float32, stride int, w []float32) {
	clear(out)
	for r, a := range w {
		row := m[r*stride : r*stride+len(out)]
		for j, v := range row {
			out[j] += a * v
		}
	}
}
