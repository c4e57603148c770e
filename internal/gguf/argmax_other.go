//go:build !amd64 || purego

package gguf

func argMaxBlocks(x []float32) int          { return 0 }
func maxBlocks(x []float32) float32         { panic("gguf: maxBlocks without the kernel") }
func firstEqual(x []float32, m float32) int { panic("gguf: firstEqual without the kernel") }
