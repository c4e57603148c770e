//go:build amd64 && !purego

package gguf

//go:noescape
func kq4MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int)

//go:noescape
func kq6MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int)
