package gguf

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestHugeAlloc: hugeAlloc returns exactly n zero bytes, and on Linux
// large ones start at a 2 MiB boundary.
func TestHugeAlloc(t *testing.T) {
	for _, n := range []int{0, 100, 1<<20 - 1, 1 << 20, 5<<20 + 3} {
		p := hugeAlloc(n)
		if len(p) != n || cap(p) != n {
			t.Fatalf("n=%d: len %d cap %d", n, len(p), cap(p))
		}
		for i, v := range p {
			if v != 0 {
				t.Fatalf("n=%d: byte %d is %d", n, i, v)
			}
		}
		if runtime.GOOS == "linux" && n >= 1<<20 {
			if a := uintptr(unsafe.Pointer(unsafe.SliceData(p))); a%(2<<20) != 0 {
				t.Fatalf("n=%d: starts at %#x, not at a 2 MiB boundary", n, a)
			}
		}
	}
}
