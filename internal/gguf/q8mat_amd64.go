//go:build amd64 && !purego

package gguf

import "golang.org/x/sys/cpu"

// mulMatQ8 is MulMatQ8 after its checks: with AVX2, two rows by four
// inputs at a time in blocks of mulMatBlock rows (a last group of two or
// three inputs fills the kernel's other slots with copies of its last
// input, whose results are dropped; a single input left over, and a
// single row, go through DotQ8), else DotQ8 for every row and input.
func mulMatQ8(outs [][]float32, m []byte, rowBytes, lo, hi int, xs []Q8Vec) {
	n := len(xs)
	nb := rowBytes / 34
	if !cpu.X86.HasAVX2 || n < 2 {
		mulMatQ8Each(outs, m, rowBytes, lo, hi, xs)
		return
	}
	var xp [4]*int8
	var acc [8]float32
	// The four inputs' scales interleaved block by block, on the stack for
	// rows of up to 2,048 elements.
	var small [4 * 64]float32
	xd4 := small[:]
	if 4*nb > len(small) {
		xd4 = make([]float32, 4*nb)
	}
	for rb := lo; rb < hi; rb += mulMatBlock {
		re := min(rb+mulMatBlock, hi)
		for i := 0; i < n; i += 4 {
			k4 := min(4, n-i) // the real inputs of this group
			if k4 == 1 {
				mulMatQ8Each(outs[i:], m, rowBytes, rb, re, xs[i:])
				continue
			}
			for k := range xp {
				x := &xs[i+min(k, k4-1)]
				xp[k] = &x.Q[:nb*32][0]
				for b, d := range x.D[:nb] {
					xd4[4*b+k] = d
				}
			}
			for r := rb; r < re; r += 2 {
				stride := rowBytes
				if r+1 == re {
					stride = 0 // the last row twice
				}
				_ = m[r*rowBytes+stride+rowBytes-1]
				acc = [8]float32{}
				q8Dot2x4AVX2(&m[r*rowBytes], stride, &xp, &xd4[0], nb, &acc)
				for k := 0; k < k4; k++ {
					outs[i+k][r] = acc[k]
					if stride != 0 {
						outs[i+k][r+1] = acc[4+k]
					}
				}
			}
		}
	}
}

//go:noescape
func q8Dot2x4AVX2(row *byte, stride int, xs *[4]*int8, xd4 *float32, nb int, out *[8]float32)

// quantizeQ8 is quantizeQ8Go in AVX-512 assembly when the CPU has it.
func quantizeQ8(x []float32, q []int8, d []float32, nb int) {
	if !hasAVX512() {
		quantizeQ8Go(x, q, d, nb)
		return
	}
	_, _, _ = x[nb*32-1], q[nb*32-1], d[nb-1]
	quantizeQ8AVX512(&x[0], &q[0], &d[0], nb)
}

//go:noescape
func quantizeQ8AVX512(x *float32, q *int8, d *float32, nb int)
