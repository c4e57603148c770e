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

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32
