//go:build !linux

package gguf

// hugeAlloc returns n zero bytes for a repacked matrix.
func hugeAlloc(n int) []byte { return make([]byte, n) }
