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

// mulRowsF32 is MulRowsF32 after its checks: the AVX-512 four-row kernel
// when the CPU has AVX-512F, else one dotF32 a row. rows > 0, cols > 0.
func mulRowsF32(out, m []float32, cols int, x []float32) {
	rows := len(out)
	if !cpu.X86.HasAVX512F {
		for r := range out {
			out[r] = dotF32(m[r*cols:(r+1)*cols], x)
		}
		return
	}
	_, _ = m[rows*cols-1], x[cols-1]
	r := 0
	for ; r+4 <= rows; r += 4 {
		dotF32x4AVX512(&m[r*cols], cols, &x[0], cols, (*float32)(&out[r]))
	}
	// A leftover row is computed as four copies of itself (stride 0), so
	// its value is what the four-row kernel gives it anywhere.
	var tmp [4]float32
	for ; r < rows; r++ {
		dotF32x4AVX512(&m[r*cols], 0, &x[0], cols, &tmp[0])
		out[r] = tmp[0]
	}
}

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

//go:noescape
func dotF32x4AVX512(m *float32, stride int, x *float32, n int, out *float32)
