//go:build !amd64 || purego

package gguf

import "gonum.org/v1/gonum/blas/gonum"

// dotF32 is gonum's Sdot (assembly on some architectures, pure Go with
// purego). len(a) > 0 and len(b) ≥ len(a).
func dotF32(a, b []float32) float32 {
	n := len(a)
	return gonum.Implementation{}.Sdot(n, a, 1, b[:n], 1)
}
