package gguf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// q8Paths returns the Q8Matrix layouts this machine can run: the stored
// rows (MulMatQ8) always, the packed VNNI layout when the CPU has it.
func q8Paths() []bool {
	if hasQ8VNNI() {
		return []bool{false, true}
	}
	return []bool{false}
}

// randQ8Matrix returns rows random Q8_0 rows of nb blocks (randQ8's: the
// whole int8 range, -128 included).
func randQ8Matrix(r *rand.Rand, rows, nb int) []byte {
	m := make([]byte, 0, rows*nb*34)
	for k := 0; k < rows; k++ {
		row, _, _ := randQ8(r, nb)
		m = append(m, row...)
	}
	return m
}

// TestQ8MatrixMatchesGo checks Q8Matrix.MulMat on every path against the
// pure-Go kernel bit for bit: odd row counts and ranges that start and
// end inside a group of 16, 1 to 17 inputs (more than one kernel call of
// eight), one block to many, -128 weights, and the extremes of both
// ranges in every lane (-128·-127 and 127·127). Rows outside [lo, hi)
// must not be written.
func TestQ8MatrixMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, vnni := range q8Paths() {
		for _, n := range []int{1, 2, 3, 5, 8, 9, 17} {
			for _, nb := range []int{1, 3, 9, 24} {
				for _, span := range [][3]int{{0, 37, 37}, {3, 20, 21}, {16, 32, 33}, {5, 6, 7}, {0, 64, 64}, {17, 31, 40}} {
					lo, hi, rows := span[0], span[1], span[2]
					m := randQ8Matrix(r, rows, nb)
					xs, outs := make([]Q8Vec, n), make([][]float32, n)
					for i := range xs {
						_, v, _ := randQ8(r, nb)
						xs[i] = *v
						outs[i] = make([]float32, rows)
						for k := range outs[i] {
							outs[i][k] = -7
						}
					}
					if nb == 3 { // extremes: row lo all -128 against -127, the last block 127·127
						for j := 0; j < nb*32; j++ {
							m[lo*nb*34+2+j/32*34+j%32] = 0x80
							xs[0].Q[j] = -127
						}
						for j := 0; j < 32; j++ {
							m[lo*nb*34+2*34+2+j] = 127
							xs[0].Q[64+j] = 127
						}
					}
					q, err := newQ8Matrix(m, rows, nb*34, vnni)
					if err != nil {
						t.Fatal(err)
					}
					q.MulMat(outs, lo, hi, xs)
					for i := range xs {
						for k := 0; k < rows; k++ {
							got := outs[i][k]
							if k < lo || k >= hi {
								if got != -7 {
									t.Fatalf("vnni=%v n=%d nb=%d [%d,%d): wrote row %d", vnni, n, nb, lo, hi, k)
								}
								continue
							}
							want := q8DotGo(m[k*nb*34:(k+1)*nb*34], xs[i].Q, xs[i].D, nb)
							if math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("vnni=%v n=%d nb=%d [%d,%d) input %d row %d: %v, Go %v", vnni, n, nb, lo, hi, i, k, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestQ8MatrixExactSums checks the int32 block sums themselves: with
// every scale 1 the result is the exact integer dot product of the
// extremes (-128 and 127 weights against -127 and 127).
func TestQ8MatrixExactSums(t *testing.T) {
	for _, vnni := range q8Paths() {
		const rows, nb = 19, 4
		m := make([]byte, rows*nb*34)
		var x Q8Vec
		x.Q, x.D = make([]int8, nb*32), make([]float32, nb)
		for b := 0; b < nb; b++ {
			x.D[b] = 1
		}
		for k := 0; k < rows; k++ {
			for b := 0; b < nb; b++ {
				blk := m[k*nb*34+b*34:]
				blk[0], blk[1] = 0, 0x3c // f16 1.0
				for j := 0; j < 32; j++ {
					blk[2+j] = 0x80
					if k%2 == 1 && b%2 == 1 {
						blk[2+j] = 127
					}
				}
			}
		}
		for j := range x.Q {
			x.Q[j] = -127
			if j/32%2 == 1 {
				x.Q[j] = 127
			}
		}
		q, err := newQ8Matrix(m, rows, nb*34, vnni)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, rows)
		q.MulMat([][]float32{out}, 0, rows, []Q8Vec{x})
		for k, got := range out {
			// Even rows: -128 everywhere, against -127 and 127 blocks in
			// turn; odd rows: 127 in the blocks where x is 127.
			// The even rows' blocks cancel in pairs: 32·(-128)(-127) + 32·(-128)(127).
			want := float32(0)
			if k%2 == 1 {
				want = float32(nb / 2 * 32 * (128*127 + 127*127))
			}
			if got != want {
				t.Fatalf("vnni=%v row %d: %v, want %v", vnni, k, got, want)
			}
		}
	}
}

// TestQ8NegSums checks the per-block -128·Σq the VNNI kernel's
// correction uses, including blocks of -127 and 127 and -128 (which the
// quantizer never makes, but the sum must still be right).
func TestQ8NegSums(t *testing.T) {
	if !hasQ8VNNI() {
		t.Skip("no AVX-512 VNNI")
	}
	r := rand.New(rand.NewPCG(5, 6))
	const nb = 7
	q := make([]int8, nb*32)
	for i := range q {
		q[i] = int8(r.IntN(256) - 128)
	}
	for j := 0; j < 32; j++ {
		q[32+j], q[64+j], q[96+j] = -127, 127, -128
	}
	c := make([]int32, nb)
	q8NegSums(&q[0], nb, &c[0])
	for b := range c {
		var s int32
		for _, v := range q[b*32 : b*32+32] {
			s += int32(v)
		}
		if c[b] != -128*s {
			t.Fatalf("block %d: %d, want %d", b, c[b], -128*s)
		}
	}
}

func TestNewQ8MatrixRejects(t *testing.T) {
	for _, c := range [][3]int{{10, 2, 34}, {68, 2, 35}, {68, 2, 0}, {68, -1, 34}} {
		if _, err := NewQ8Matrix(make([]byte, c[0]), c[1], c[2]); err == nil {
			t.Errorf("%d bytes, %d rows of %d: no error", c[0], c[1], c[2])
		}
	}
}

func BenchmarkQ8Matrix(b *testing.B) {
	const rows, nb = 768, 9
	r := rand.New(rand.NewPCG(1, 1))
	m := randQ8Matrix(r, rows, nb)
	for _, vnni := range q8Paths() {
		q, err := newQ8Matrix(m, rows, nb*34, vnni)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{1, 2, 4, 8} {
			xs, outs := make([]Q8Vec, n), make([][]float32, n)
			for i := range xs {
				_, v, _ := randQ8(r, nb)
				xs[i], outs[i] = *v, make([]float32, rows)
			}
			b.Run(fmt.Sprintf("768x288/vnni=%v/inputs=%d", vnni, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					q.MulMat(outs, 0, rows, xs)
				}
				b.ReportMetric(float64(rows*nb*32*n*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}
