//go:build amd64 && !purego

package gguf

import "golang.org/x/sys/cpu"

// hasQ8VNNI reports whether the CPU runs q8MulVNNI: AVX-512 F, VL, DQ
// and BW, and AVX512_VNNI for VPDPBUSD.
func hasQ8VNNI() bool {
	return hasAVX512() && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI
}

//go:noescape
func q8MulVNNI(w *byte, groups, nb int, ins *[8]q8In, n int)

//go:noescape
func q8NegSums(q *int8, nb int, c *int32)
