//go:build !amd64 || purego

package gguf

// weightedSumF32 is WeightedSumF32 after its checks.
func weightedSumF32(out, m []float32, stride int, w []float32) {
	weightedSumGo(out, m, stride, w)
}
