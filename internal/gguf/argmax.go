package gguf

import "math"

// ArgMax returns the index of the first largest value of x (len(x) > 0),
// NaNs skipped, and 0 when x[0] is NaN: what the loop
//
//	best := 0
//	for i, v := range x { if v > x[best] { best = i } }
//
// returns. On amd64 with AVX-512 whole blocks of 16 are scanned in
// assembly (the largest value, then its first index).
func ArgMax(x []float32) int {
	if math.IsNaN(float64(x[0])) {
		return 0
	}
	n := argMaxBlocks(x)
	m := x[0]
	if n > 0 {
		m = maxBlocks(x[:n])
	}
	for _, v := range x[n:] {
		if v > m {
			m = v
		}
	}
	if n > 0 {
		if i := firstEqual(x[:n], m); i >= 0 {
			return i
		}
	}
	for i, v := range x[n:] {
		if v == m {
			return n + i
		}
	}
	return 0 // not reached: m is a value of x
}
