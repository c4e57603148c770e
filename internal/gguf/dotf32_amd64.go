//go:build amd64 && !purego

package gguf

import (
	"golang.org/x/sys/cpu"
	"gonum.org/v1/gonum/blas/gonum"
)

// dotF32 is the AVX2 FMA kernel when the CPU has it, else gonum's Sdot.
// len(a) > 0 and len(b) ≥ len(a).
func dotF32(a, b []float32) float32 {
	n := len(a)
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return gonum.Implementation{}.Sdot(n, a, 1, b[:n], 1)
	}
	_ = b[n-1]
	return dotF32AVX2(&a[0], &b[0], n)
}

// mulRowsF32 is MulRowsStrideF32 after its checks: the AVX-512 four-row
// kernel when the CPU has AVX-512F, else one dotF32 a row. rows > 0,
// cols > 0.
func mulRowsF32(out, m []float32, stride, cols int, x []float32) {
	rows := len(out)
	if !hasAVX512() {
		for r := range out {
			out[r] = dotF32(m[r*stride:r*stride+cols], x)
		}
		return
	}
	_, _ = m[(rows-1)*stride+cols-1], x[cols-1]
	r := 0
	for ; r+4 <= rows; r += 4 {
		pf := 0
		if stride >= 256 {
			pf = rowsPrefetch * stride * 4
		}
		dotF32x4AVX512(&m[r*stride], stride, &x[0], cols, &out[r], pf)
	}
	// A leftover row is computed as four copies of itself (stride 0), so
	// its value is what the four-row kernel gives it anywhere.
	var tmp [4]float32
	for ; r < rows; r++ {
		dotF32x4AVX512(&m[r*stride], 0, &x[0], cols, &tmp[0], 0)
		out[r] = tmp[0]
	}
}

// mulMatF32 is MulMatF32 after its checks: with AVX-512, blocks of
// mulMatBlock rows are kept in L1 while the inputs pass over them, four
// rows by four inputs at a time (four rows by one for the inputs left
// over); else one dotF32 per row and input.
func mulMatF32(outs [][]float32, m []float32, cols, lo, hi int, xs [][]float32) {
	if !hasAVX512() {
		for i, x := range xs {
			o := outs[i]
			for r := lo; r < hi; r++ {
				o[r] = dotF32(m[r*cols:(r+1)*cols], x)
			}
		}
		return
	}
	_ = m[hi*cols-1]
	n := len(xs)
	var xp, op [4]*float32
	var tmp [16]float32
	for rb := lo; rb < hi; rb += mulMatBlock {
		re := min(rb+mulMatBlock, hi)
		i := 0
		for ; i+4 <= n; i += 4 {
			// The first four inputs bring the next block into cache.
			pf := 0
			if i == 0 {
				pf = mulMatBlock * cols * 4
			}
			for k := range xp {
				xp[k] = &xs[i+k][:cols][0]
			}
			r := rb
			for ; r+4 <= re; r += 4 {
				for k := range op {
					op[k] = &outs[i+k][r : r+4][0]
				}
				dotF32x4x4AVX512(&m[r*cols], cols, &xp, cols, &op, pf)
			}
			for k := range op {
				op[k] = &tmp[4*k]
			}
			for ; r < re; r++ {
				dotF32x4x4AVX512(&m[r*cols], 0, &xp, cols, &op, 0)
				for k := range op {
					outs[i+k][r] = tmp[4*k]
				}
			}
		}
		for ; i < n; i++ {
			mulRowsF32(outs[i][rb:re], m[rb*cols:re*cols], cols, cols, xs[i])
		}
	}
}

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

// rowsPrefetch is how many rows ahead MulRowsF32 prefetches.
const rowsPrefetch = 8

//go:noescape
func dotF32x4x4AVX512(m *float32, stride int, xs *[4]*float32, n int, outs *[4]*float32, pf int)

//go:noescape
func dotF32x4AVX512(m *float32, stride int, x *float32, n int, out *float32, pf int)

// hasAVX512 reports whether the AVX-512 kernels can run: they use
// AVX-512F, the 256-bit forms of EVEX instructions and registers 16-31
// (VL), and VEXTRACTF32X8 (DQ).
func hasAVX512() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ
}
