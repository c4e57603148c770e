//go:build amd64 && !purego

package gguf

// argMaxBlocks returns how many leading elements of x ArgMax scans with
// AVX-512 (whole blocks of 16; 0 without AVX-512).
func argMaxBlocks(x []float32) int {
	if !hasAVX512() {
		return 0
	}
	return len(x) &^ 15
}

// maxBlocks returns the largest non-NaN value of x (len a positive
// multiple of 16), -Inf if there is none.
func maxBlocks(x []float32) float32 { return maxAVX512(&x[0], len(x)/16) }

// firstEqual returns the first index of x (len a positive multiple of
// 16) holding m, or -1.
func firstEqual(x []float32, m float32) int { return firstEqualAVX512(&x[0], len(x)/16, m) }

//go:noescape
func maxAVX512(x *float32, blocks int) float32

//go:noescape
func firstEqualAVX512(x *float32, blocks int, m float32) int
