package gguf

//go:generate go run kvnni_gen.go

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// KMatrix is a Q4_K or Q6_K matrix prepared for products with inputs
// quantized by QuantizeQ8 (MulMat). On CPUs with AVX-512 VNNI its rows
// are repacked once, at construction, into groups of 16 rows (lane r of
// a 64-byte vector is row r, as in Q8Matrix's layout): Q4_K keeps its
// 4-bit codes four bytes per lane with the sub-blocks' d·scale and
// dmin·min as float32 per row, Q6_K's 6-bit codes are spread to one byte
// each with the int8 scales and d beside them. One VPDPBUSD then
// multiplies four codes of each of 16 rows by four values of an input,
// each block's codes are unpacked once for up to eight inputs, and no
// horizontal sums are needed. With AVX2 only, the same layout serves a
// kernel taking each group as two halves of 8 rows and up to 4 inputs.
// Elsewhere (-tags purego, other architectures) it keeps the rows as
// stored and MulMat calls the Go DotQ4K or DotQ6K per row and input. Every output is bit
// for bit the pure-Go reference's (q4KDotGo, q6KDotGo), so batching
// never changes a result.
type KMatrix struct {
	typ                TensorType
	rows, rowBytes, nb int    // nb: blocks of 256 per row
	raw                []byte // the rows as stored
	packed             []byte // kGroup-row groups of blocks; nil on kPathGo
	path               kPath
}

// kPath is a KMatrix's kernel.
type kPath int

const (
	kPathGo   kPath = iota // q4KDotGo, q6KDotGo per row and input
	kPathAVX2              // kq4MulAVX2, kq6MulAVX2: 16 rows by up to 4 inputs
	kPathVNNI              // kq4MulVNNI, kq6MulVNNI: 16 rows by up to 8 inputs
)

// kPaths returns the kernels this CPU can run, the fastest last.
func kPaths() []kPath {
	switch {
	case hasQ8VNNI():
		return []kPath{kPathGo, kPathAVX2, kPathVNNI}
	case hasAVX2():
		return []kPath{kPathGo, kPathAVX2}
	}
	return []kPath{kPathGo}
}

const (
	kGroup = 16
	// kq4Packed is one packed Q4_K block of a group for the AVX2 kernel:
	// 32 vectors of 16 rows × 4 code bytes (vector 8c+t holds bytes
	// 4t..4t+3 of the block's 32-byte chunk c, low nibbles sub-block 2c,
	// high 2c+1), then 8 vectors of the rows' d·scale per sub-block, then
	// 8 of dmin·min, as float32.
	kq4Packed = 32*64 + 8*64 + 8*64
	// kq4PackedC is the VNNI kernel's smaller block (decoding reads every
	// weight once per token, so bytes are time): the same 32 code
	// vectors, then the rows' 6-bit scales (8 × 16 bytes, sub-block j of
	// every row), their mins likewise, then the rows' d and dmin as f16
	// (16 × 2 bytes each). 2,368 bytes against 2,304 as stored.
	kq4PackedC = 32*64 + 8*16 + 8*16 + 16*2 + 16*2
	// kq6Packed is one packed Q6_K block of a group: 64 vectors of 16
	// rows × 4 codes as bytes (vector 8j+4h+k holds codes
	// 32j+16h+4k..+3), then 16 × 16 int8 scales (sub-block s of every
	// row), then the rows' d as float32.
	kq6Packed = 64*64 + 16*16 + 16*4
)

// kIn is one input of the VNNI kernels: its values, scales, per-block
// offsets (Q4_K: kq4Min per 32 values as float32; Q6_K: -32·Σx per 16
// values as int32) and where its 16 outputs of the first group go (the
// assembly reads the fields at offsets 0, 8, 16, 24).
type kIn struct {
	q   *int8
	d   *float32
	c   unsafe.Pointer
	out *float32
}

// NewKMatrix prepares Q4_K or Q6_K data (rows rows of rowBytes bytes,
// whole blocks) for MulMat. With AVX-512 VNNI or AVX2 it keeps a
// repacked copy on the heap (Q4_K: 4/3 of the matrix's size, Q6_K: 1.3×, rows rounded
// up to 16); data is then only kept, not read again by MulMat.
func NewKMatrix(t TensorType, data []byte, rows, rowBytes int) (*KMatrix, error) {
	p := kPaths()
	return newKMatrix(t, data, rows, rowBytes, p[len(p)-1])
}

func newKMatrix(t TensorType, data []byte, rows, rowBytes int, path kPath) (*KMatrix, error) {
	var bs int
	switch t {
	case Q4_K:
		bs = 144
	case Q6_K:
		bs = 210
	default:
		return nil, fmt.Errorf("gguf: KMatrix of type %s", t)
	}
	if rows < 0 || rowBytes <= 0 || rowBytes%bs != 0 || len(data) < rows*rowBytes {
		return nil, fmt.Errorf("gguf: %s matrix of %d rows of %d bytes from %d bytes", t, rows, rowBytes, len(data))
	}
	m := &KMatrix{typ: t, rows: rows, rowBytes: rowBytes, nb: rowBytes / bs, raw: data[:rows*rowBytes], path: path}
	if path != kPathGo {
		if t == Q4_K {
			m.packed = packQ4K(m.raw, rows, m.nb, path == kPathVNNI)
		} else {
			m.packed = packQ6K(m.raw, rows, m.nb)
		}
	}
	return m, nil
}

// Rows returns the matrix's row count.
func (m *KMatrix) Rows() int { return m.rows }

// Type returns the matrix's tensor type.
func (m *KMatrix) Type() TensorType { return m.typ }

// packQ4K returns Q4_K rows in kq4MulVNNI's layout (compact, see
// kq4PackedC) or kq4MulAVX2's (kq4Packed); padding rows are zero.
func packQ4K(raw []byte, rows, nb int, compact bool) []byte {
	groups := (rows + kGroup - 1) / kGroup
	bs := kq4Packed
	if compact {
		bs = kq4PackedC
	}
	p := hugeAlloc(groups * nb * bs)
	for row := 0; row < rows; row++ {
		g, r := row/kGroup, row%kGroup
		for b := 0; b < nb; b++ {
			blk := raw[(row*nb+b)*144:][:144]
			dst := p[(g*nb+b)*bs:][:bs]
			for v := 0; v < 32; v++ {
				copy(dst[v*64+r*4:v*64+r*4+4], blk[16+4*v:16+4*v+4])
			}
			if compact {
				for j := 0; j < 8; j++ {
					dst[2048+16*j+r], dst[2176+16*j+r] = scaleMinK4(j, blk[4:16])
				}
				copy(dst[2304+2*r:], blk[0:2])
				copy(dst[2336+2*r:], blk[2:4])
				continue
			}
			d := F16ToF32(binary.LittleEndian.Uint16(blk[0:]))
			dmin := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
			for j := 0; j < 8; j++ {
				sc, mn := scaleMinK4(j, blk[4:16])
				binary.LittleEndian.PutUint32(dst[2048+j*64+r*4:], math.Float32bits(d*float32(sc)))
				binary.LittleEndian.PutUint32(dst[2560+j*64+r*4:], math.Float32bits(dmin*float32(mn)))
			}
		}
	}
	return p
}

// packQ6K returns Q6_K rows in kq6MulVNNI's layout (see kq6Packed);
// padding rows are zero.
func packQ6K(raw []byte, rows, nb int) []byte {
	groups := (rows + kGroup - 1) / kGroup
	p := hugeAlloc(groups * nb * kq6Packed)
	var u [256]uint8
	for row := 0; row < rows; row++ {
		g, r := row/kGroup, row%kGroup
		for b := 0; b < nb; b++ {
			blk := (*[210]byte)(raw[(row*nb+b)*210:][:210])
			dst := p[(g*nb+b)*kq6Packed:][:kq6Packed]
			q6KCodes(blk, &u)
			for v := 0; v < 64; v++ {
				copy(dst[v*64+r*4:v*64+r*4+4], u[4*v:4*v+4])
			}
			for s := 0; s < 16; s++ {
				dst[4096+16*s+r] = blk[192+s]
			}
			copy(dst[4352+4*r:4352+4*r+4], binary.LittleEndian.AppendUint32(nil, math.Float32bits(F16ToF32(binary.LittleEndian.Uint16(blk[208:])))))
		}
	}
	return p
}

// MulMat sets outs[i][r] to the dot product of row r with xs[i] (DotQ4K
// or DotQ6K, bit for bit) for every input i and every row r in [lo, hi),
// every xs[i] quantized by QuantizeQ8 from a vector of the rows' length;
// other elements of outs are not written. With AVX-512 VNNI it runs 16
// rows by up to 8 inputs per kernel call, with AVX2 16 by up to 4.
func (m *KMatrix) MulMat(outs [][]float32, lo, hi int, xs []Q8Vec) {
	var o KOffsets
	m.Offsets(xs, 0, len(xs), &o)
	m.MulMatOffsets(outs, lo, hi, xs, &o)
}

// KOffsets holds inputs' per-block offsets for KMatrix products (Q4_K:
// kq4Min of every 32 values; Q6_K: -32·Σx of every 16), which depend only
// on the input and the matrix's type and row length. KMatrix.Offsets
// computes them once, so that a product split into many MulMatOffsets
// calls (row ranges on several threads) and products of the same inputs
// with matrices of the same type and width do not redo them.
type KOffsets struct {
	typ   TensorType
	nb, n int
	c     []int32
}

// Offsets sets o to the offsets of xs for m's type and width, computing
// those of inputs [lo, hi) (o is sized for len(xs) inputs; calls for
// disjoint ranges may run concurrently once one call with lo = hi = 0 has
// sized it). Without a repacked copy (pure Go) there is nothing to
// compute.
func (m *KMatrix) Offsets(xs []Q8Vec, lo, hi int, o *KOffsets) {
	per, nb := m.kPer(), m.nb
	if m.packed == nil {
		*o = KOffsets{typ: m.typ, nb: nb, n: len(xs)}
		return
	}
	if o.typ != m.typ || o.nb != nb || o.n != len(xs) || len(o.c) < len(xs)*nb*per {
		if cap(o.c) < len(xs)*nb*per {
			o.c = make([]int32, len(xs)*nb*per)
		}
		o.typ, o.nb, o.n, o.c = m.typ, nb, len(xs), o.c[:len(xs)*nb*per]
	}
	for i := lo; i < hi; i++ {
		if len(xs[i].Q) < nb*256 || len(xs[i].D) < nb*8 {
			panic("gguf: KMatrix.Offsets with a short input")
		}
		c := o.c[i*nb*per : (i+1)*nb*per]
		if m.typ == Q4_K {
			kq4Offsets(xs[i].Q[:nb*256], xs[i].D[:nb*8], c)
		} else {
			kq6Offsets(xs[i].Q[:nb*256], c)
		}
	}
}

// kPer is the offsets per block of 256 values.
func (m *KMatrix) kPer() int {
	if m.typ == Q6_K {
		return 16
	}
	return 8
}

// MulMatOffsets is MulMat with the inputs' offsets o computed beforehand
// by m.Offsets (or by Offsets of another KMatrix of the same type and
// width) for all of xs.
func (m *KMatrix) MulMatOffsets(outs [][]float32, lo, hi int, xs []Q8Vec, o *KOffsets) {
	if hi <= lo || len(xs) == 0 {
		return
	}
	n, nb := len(xs), m.nb
	if lo < 0 || hi > m.rows || len(outs) < n {
		panic("gguf: KMatrix.MulMat out of range or with short outputs")
	}
	for i := range xs {
		if len(xs[i].Q) < nb*256 || len(xs[i].D) < nb*8 || len(outs[i]) < hi {
			panic("gguf: KMatrix.MulMat with a short input or output")
		}
	}
	if m.packed == nil {
		m.mulMatEach(outs, lo, hi, xs)
		return
	}
	per := m.kPer()
	if o.typ != m.typ || o.nb != nb || o.n != n || len(o.c) < n*nb*per {
		panic("gguf: KMatrix.MulMatOffsets with offsets of other inputs or another type")
	}
	cs := o.c
	bs, kernel, maxIn := kq4PackedC, kq4MulVNNI, q8MaxInputs
	switch {
	case m.typ == Q4_K && m.path == kPathAVX2:
		bs, kernel, maxIn = kq4Packed, kq4MulAVX2, 4
	case m.typ == Q6_K && m.path == kPathAVX2:
		bs, kernel, maxIn = kq6Packed, kq6MulAVX2, 4
	case m.typ == Q6_K:
		bs, kernel = kq6Packed, kq6MulVNNI
	}
	var ins [q8MaxInputs]kIn
	var tmp [q8MaxInputs][kGroup]float32
	call := func(ga, gb, i0, k int, direct bool) {
		for j := 0; j < k; j++ {
			x := &xs[i0+j]
			ins[j] = kIn{q: &x.Q[0], d: &x.D[0], c: unsafe.Pointer(&cs[(i0+j)*nb*per]), out: &tmp[j][0]}
			if direct {
				ins[j].out = &outs[i0+j][ga*kGroup]
			}
		}
		kernel(&m.packed[ga*nb*bs], gb-ga, nb, &ins, k)
	}
	forGroups(lo, hi, n, maxIn, nb*bs, outs, &tmp, call)
}

// mulMatEach is MulMat with one pure-Go dot product per row and input,
// 16 rows at a time so the rows stay in L1 while every input passes.
func (m *KMatrix) mulMatEach(outs [][]float32, lo, hi int, xs []Q8Vec) {
	dot := q4KDotGo
	if m.typ == Q6_K {
		dot = q6KDotGo
	}
	for rb := lo; rb < hi; rb += kGroup {
		re := min(rb+kGroup, hi)
		for i := range xs {
			o, x := outs[i], &xs[i]
			for r := rb; r < re; r++ {
				o[r] = dot(m.raw[r*m.rowBytes:(r+1)*m.rowBytes], x.Q, x.D, m.nb)
			}
		}
	}
}

// kq4Offsets sets c[j] to the float32 bits of kq4Min(Σ x, dx) of every
// 32-value block j of q.
func kq4Offsets(q []int8, d []float32, c []int32) {
	for j := range d {
		var s int32
		for _, v := range q[32*j : 32*j+32] {
			s += int32(v)
		}
		c[j] = int32(math.Float32bits(kq4Min(s, d[j])))
	}
}

// kq6Offsets sets c[s] to -32·Σ x over every 16-value sub-block s of q.
func kq6Offsets(q []int8, c []int32) {
	for s := 0; s < len(q)/16; s++ {
		var sum int32
		for _, v := range q[16*s : 16*s+16] {
			sum += int32(v)
		}
		c[s] = -32 * sum
	}
}
