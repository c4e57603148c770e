//go:build amd64 && !purego

package gguf

import "golang.org/x/sys/cpu"

// hasAVX2 reports whether the CPU runs kq4MulAVX2 and kq6MulAVX2.
func hasAVX2() bool { return cpu.X86.HasAVX2 }

//go:noescape
func kq4MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int)

//go:noescape
func kq6MulVNNI(w *byte, groups, nb int, ins *[8]kIn, n int)

//go:noescape
func kq4MulAVX2(w *byte, groups, nb int, ins *[8]kIn, n int)

//go:noescape
func kq6MulAVX2(w *byte, groups, nb int, ins *[8]kIn, n int)
