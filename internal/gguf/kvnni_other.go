//go:build !amd64 || purego

package gguf

func kq4MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int) {
	panic("gguf: kq4MulVNNI without the kernel")
}

func kq6MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int) {
	panic("gguf: kq6MulVNNI without the kernel")
}
