//go:build !amd64 || purego

package gguf

import "gonum.org/v1/gonum/blas/gonum"

// dotF32 is gonum's Sdot (assembly on some architectures, pure Go with
// purego). len(a) > 0 and len(b) ≥ len(a).
func dotF32(a, b []float32) float32 {
	n := len(a)
	return gonum.Implementation{}.Sdot(n, a, 1, b[:n], 1)
}

// mulRowsF32 is MulRowsStrideF32 after its checks: one dotF32 a row.
func mulRowsF32(out, m []float32, stride, cols int, x []float32) {
	for r := range out {
		out[r] = dotF32(m[r*stride:r*stride+cols], x)
	}
}

// mulMatF32 is MulMatF32 after its checks: one dotF32 per row and input.
func mulMatF32(outs [][]float32, m []float32, cols, lo, hi int, xs [][]float32) {
	for i, x := range xs {
		o := outs[i]
		for r := lo; r < hi; r++ {
			o[r] = dotF32(m[r*cols:(r+1)*cols], x)
		}
	}
}
