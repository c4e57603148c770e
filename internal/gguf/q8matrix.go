package gguf

import (
	"encoding/binary"
	"fmt"
)

// Q8Matrix is a Q8_0 matrix prepared for products with quantized inputs
// (MulMat). On CPUs with AVX-512 VNNI its rows are repacked once, at
// construction, into groups of 16 rows whose blocks interleave the rows
// four bytes at a time (lane r of a 64-byte vector is row r), so one
// VPDPBUSD multiplies four weights of each of 16 rows by four values of
// an input broadcast to every lane, and the 16 block sums come out in
// lanes with no horizontal additions. Elsewhere it keeps the rows as
// stored and MulMat is MulMatQ8. Either way every output is bit for bit
// DotQ8's, so batching (how many inputs share a call) never changes a
// result.
type Q8Matrix struct {
	rows, rowBytes, nb int
	raw                []byte // the rows as stored, DotQ8's layout
	packed             []byte // q8Group-row groups of q8PackedBlock-byte blocks; nil without VNNI
}

const (
	// q8Group is the rows of one packed group, one per 32-bit lane of a
	// 512-bit vector.
	q8Group = 16
	// q8PackedBlock is one block of a packed group: eight vectors of 16
	// rows × 4 weight bytes, then the 16 rows' f16 scales (as many bytes
	// as 16 blocks as stored).
	q8PackedBlock = 8*64 + 32
	// q8MaxInputs is how many inputs one kernel call multiplies.
	q8MaxInputs = 8
)

// q8In is one input of q8MulVNNI: its values and scales, its -128·Σq per
// block, and where its 16 outputs of the first group go (the assembly
// reads the fields at offsets 0, 8, 16, 24).
type q8In struct {
	q   *int8
	d   *float32
	c   *int32
	out *float32
}

// NewQ8Matrix prepares the Q8_0 matrix data (rows rows of rowBytes bytes,
// whole blocks of 34 bytes) for MulMat. With AVX-512 VNNI it keeps a
// repacked copy on the heap (the matrix's size, rows rounded up to 16);
// data itself is then only kept, not read again by MulMat.
func NewQ8Matrix(data []byte, rows, rowBytes int) (*Q8Matrix, error) {
	return newQ8Matrix(data, rows, rowBytes, hasQ8VNNI())
}

// newQ8Matrix is NewQ8Matrix with the packed layout chosen by vnni, so
// tests can run both paths on one machine.
func newQ8Matrix(data []byte, rows, rowBytes int, vnni bool) (*Q8Matrix, error) {
	if rows < 0 || rowBytes <= 0 || rowBytes%34 != 0 || len(data) < rows*rowBytes {
		return nil, fmt.Errorf("gguf: Q8_0 matrix of %d rows of %d bytes from %d bytes", rows, rowBytes, len(data))
	}
	m := &Q8Matrix{rows: rows, rowBytes: rowBytes, nb: rowBytes / 34, raw: data[:rows*rowBytes]}
	if vnni {
		m.packed = packQ8(m.raw, rows, m.nb)
	}
	return m, nil
}

// Rows returns the matrix's row count.
func (m *Q8Matrix) Rows() int { return m.rows }

// packQ8 returns the rows in q8MulVNNI's layout: per group of 16 rows
// (the last padded with zero rows) and block b, vector k (k < 8) holds
// bytes 4k..4k+3 of block b of each row, plus 128 so they are unsigned
// (w XOR 0x80), then the rows' f16 scales.
func packQ8(raw []byte, rows, nb int) []byte {
	groups := (rows + q8Group - 1) / q8Group
	p := hugeAlloc(groups * nb * q8PackedBlock)
	for g := 0; g < groups; g++ {
		for b := 0; b < nb; b++ {
			dst := p[(g*nb+b)*q8PackedBlock:][:q8PackedBlock]
			for r := 0; r < q8Group; r++ {
				row := g*q8Group + r
				if row >= rows {
					for k := 0; k < 8; k++ {
						copy(dst[k*64+r*4:k*64+r*4+4], []byte{0x80, 0x80, 0x80, 0x80})
					}
					continue // the scale stays 0
				}
				blk := raw[row*nb*34+b*34:][:34]
				for k := 0; k < 8; k++ {
					w := binary.LittleEndian.Uint32(blk[2+4*k:]) ^ 0x80808080
					binary.LittleEndian.PutUint32(dst[k*64+r*4:], w)
				}
				dst[512+2*r], dst[512+2*r+1] = blk[0], blk[1]
			}
		}
	}
	return p
}

// MulMat sets outs[i][r] to DotQ8(row r, &xs[i]) for every input i and
// every row r in [lo, hi), every xs[i] quantized from a vector of the
// rows' length; other elements of outs are not written. With AVX-512
// VNNI it runs 16 rows by up to 8 inputs per kernel call.
func (m *Q8Matrix) MulMat(outs [][]float32, lo, hi int, xs []Q8Vec) {
	if m.packed == nil {
		MulMatQ8(outs, m.raw, m.rowBytes, lo, hi, xs)
		return
	}
	if hi <= lo || len(xs) == 0 {
		return
	}
	nb, n := m.nb, len(xs)
	if lo < 0 || hi > m.rows || len(outs) < n {
		panic("gguf: Q8Matrix.MulMat out of range or with short outputs")
	}
	for i := range xs {
		if len(xs[i].Q) < nb*32 || len(xs[i].D) < nb || len(outs[i]) < hi {
			panic("gguf: Q8Matrix.MulMat with a short input or output")
		}
	}
	// The inputs' -128·Σq per block, on the stack for small products.
	var small [512]int32
	cs := small[:]
	if n*nb > len(cs) {
		cs = make([]int32, n*nb)
	}
	for i := range xs {
		q8NegSums(&xs[i].Q[0], nb, &cs[i*nb])
	}
	var ins [q8MaxInputs]q8In
	var tmp [q8MaxInputs][q8Group]float32
	// call runs groups [ga, gb) for inputs [i0, i0+k), into outs or, for
	// one partial group, into tmp.
	call := func(ga, gb, i0, k int, direct bool) {
		for j := 0; j < k; j++ {
			x := &xs[i0+j]
			ins[j] = q8In{q: &x.Q[0], d: &x.D[0], c: &cs[(i0+j)*nb], out: &tmp[j][0]}
			if direct {
				ins[j].out = &outs[i0+j][ga*q8Group]
			}
		}
		q8MulVNNI(&m.packed[ga*nb*q8PackedBlock], gb-ga, nb, &ins, k)
	}
	forGroups(lo, hi, n, q8MaxInputs, nb*q8PackedBlock, outs, &tmp, call)
}

// forGroups walks rows [lo, hi) of a matrix packed in groups of 16 rows
// (groupBytes each) for n inputs, calling call(ga, gb, i0, k, direct) for
// groups [ga, gb) and inputs [i0, i0+k), at most maxIn at a time, in
// chunks of groups small enough to stay in L2 while more than maxIn inputs
// pass over them. Runs of whole groups are written straight into outs
// (direct); a group only partly in [lo, hi) is computed into tmp and its
// rows in range copied into outs. Q8Matrix and KMatrix share it.
func forGroups(lo, hi, n, maxIn, groupBytes int, outs [][]float32, tmp *[q8MaxInputs][q8Group]float32, call func(ga, gb, i0, k int, direct bool)) {
	full := func(g int) bool { return g*q8Group >= lo && (g+1)*q8Group <= hi }
	chunk := max(1, (256<<10)/groupBytes)
	gEnd := (hi + q8Group - 1) / q8Group
	for c0 := lo / q8Group; c0 < gEnd; c0 += chunk {
		c1 := min(c0+chunk, gEnd)
		for i0 := 0; i0 < n; i0 += maxIn {
			k := min(maxIn, n-i0)
			for g := c0; g < c1; {
				if full(g) {
					e := g + 1
					for e < c1 && full(e) {
						e++
					}
					call(g, e, i0, k, true)
					g = e
					continue
				}
				call(g, g+1, i0, k, false)
				r0, r1 := max(lo, g*q8Group), min(hi, (g+1)*q8Group)
				for j := 0; j < k; j++ {
					copy(outs[i0+j][r0:r1], tmp[j][r0-g*q8Group:r1-g*q8Group])
				}
				g++
			}
		}
	}
}
