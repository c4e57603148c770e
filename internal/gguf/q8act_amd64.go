//go:build amd64 && !purego

package gguf

import "golang.org/x/sys/cpu"

// q8Dot is q8DotGo in AVX2 assembly when the CPU has it.
func q8Dot(row []byte, x []int8, xd []float32, nb int) float32 {
	if !cpu.X86.HasAVX2 || nb == 0 {
		return q8DotGo(row, x, xd, nb)
	}
	_, _, _ = row[nb*34-1], x[nb*32-1], xd[nb-1]
	return q8DotAVX2(&row[0], &x[0], &xd[0], nb)
}

//go:noescape
func q8DotAVX2(row *byte, x *int8, xd *float32, nb int) float32
