//go:build amd64 && !purego

package gguf

// siluMul runs SiLUMul on the largest multiple of 16 elements with
// AVX-512 and returns how many it did.
func siluMul(g, u []float32) int {
	n := len(g) &^ 15
	if !hasAVX512() || n == 0 {
		return 0
	}
	_ = u[n-1]
	siluMulAVX512(&g[0], &u[0], n/16)
	return n
}

//go:noescape
func siluMulAVX512(gp, u *float32, blocks int)

// expShift runs ExpShift on the largest multiple of 16 elements with
// AVX-512 and returns how many it did.
func expShift(x []float32, m float32) int {
	n := len(x) &^ 15
	if !hasAVX512() || n == 0 {
		return 0
	}
	expShiftAVX512(&x[0], m, n/16)
	return n
}

//go:noescape
func expShiftAVX512(x *float32, m float32, blocks int)
