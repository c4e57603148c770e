//go:build amd64 && !purego

package gguf

// weightedSumF32 is WeightedSumF32 after its checks: 64 columns at a time
// with AVX-512 (the last chunk masked), else weightedSumGo. len(w) > 0.
func weightedSumF32(out, m []float32, stride int, w []float32) {
	if !hasAVX512() {
		weightedSumGo(out, m, stride, w)
		return
	}
	cols := len(out)
	_ = m[(len(w)-1)*stride+cols-1]
	for c := 0; c < cols; c += 64 {
		k := min(64, cols-c)
		mask := ^uint64(0)
		if k < 64 {
			mask = 1<<k - 1
		}
		weightedSum64AVX512(&out[c], &m[c], stride, &w[0], len(w), mask)
	}
}

//go:noescape
func weightedSum64AVX512(out *float32, m *float32, stride int, w *float32, rows int, mask uint64)
