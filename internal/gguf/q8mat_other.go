//go:build !amd64 || purego

package gguf

// mulMatQ8 is MulMatQ8 after its checks: DotQ8 for every row and input.
func mulMatQ8(outs [][]float32, m []byte, rowBytes, lo, hi int, xs []Q8Vec) {
	mulMatQ8Each(outs, m, rowBytes, lo, hi, xs)
}

func quantizeQ8(x []float32, q []int8, d []float32, nb int) { quantizeQ8Go(x, q, d, nb) }
