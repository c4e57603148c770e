//go:build !amd64 || purego

package gguf

func hasAVX2() bool { return false }

func kq4MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int) {
	panic("gguf: kq4MulVNNI without the kernel")
}

func kq6MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int) {
	panic("gguf: kq6MulVNNI without the kernel")
}

func kq4MulAVX2(w *byte, groups, nb int, ins *[8]kIn, n int) {
	panic("gguf: kq4MulAVX2 without the kernel")
}

func kq6MulAVX2(w *byte, groups, nb int, ins *[8]kIn, n int) {
	panic("gguf: kq6MulAVX2 without the kernel")
}
