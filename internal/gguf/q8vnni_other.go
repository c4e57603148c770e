//go:build !amd64 || purego

package gguf

func hasQ8VNNI() bool { return false }

func q8MulVNNI(w *byte, groups, nb int, ins *[8]q8In, n int) {
	panic("gguf: q8MulVNNI without the kernel")
}

func q8NegSums(q *int8, nb int, c *int32) { panic("gguf: q8NegSums without the kernel") }
