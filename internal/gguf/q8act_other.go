//go:build !amd64 || purego

package gguf

func q8Dot(row []byte, x []int8, xd []float32, nb int) float32 { return q8DotGo(row, x, xd, nb) }
