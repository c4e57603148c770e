package gguf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randQ8 returns a random Q8_0 row of nb blocks (weights over the whole
// int8 range, -128 included) and a random activation vector quantized
// from floats, so its values span [-127, 127].
func randQ8(r *rand.Rand, nb int) ([]byte, *Q8Vec, []float32) {
	row := make([]byte, nb*34)
	for i := range row {
		row[i] = byte(r.IntN(256))
	}
	for b := 0; b < nb; b++ {
		h := F32ToF16(float32(r.NormFloat64() * 0.01))
		row[b*34], row[b*34+1] = byte(h), byte(h>>8)
	}
	x := make([]float32, nb*32)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	var v Q8Vec
	QuantizeQ8(x, &v)
	return row, &v, x
}

// TestQ8DotMatchesGo checks the kernel in use (AVX2 assembly on amd64)
// gives exactly the pure-Go result, including weights of -128 and the
// extremes of both ranges.
func TestQ8DotMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, nb := range []int{1, 2, 9, 24, 100} {
		row, v, _ := randQ8(r, nb)
		for k := 0; k < 3; k++ {
			if k == 1 { // -128·-127 and 127·127 in every lane
				for j := 0; j < 32; j++ {
					row[2+j], v.Q[j] = 0x80, -127
					row[len(row)-32+j], v.Q[len(v.Q)-32+j] = 127, 127
				}
			}
			if k == 2 { // exactly representable: the int32 sums themselves
				for b := 0; b < nb; b++ {
					row[b*34], row[b*34+1], v.D[b] = 0, 0x3c, 1 // f16 1.0
				}
			}
			got, want := DotQ8(row, v), q8DotGo(row, v.Q, v.D, nb)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("nb=%d case %d: kernel %v, Go %v", nb, k, got, want)
			}
			if k == 2 && nb == 2 && want != 32*128*127+32*127*127 {
				t.Fatalf("extreme sum %v", want)
			}
		}
	}
}

// TestDotQ8 checks the int8 dot product against the float one on the same
// row: the only difference is the activations' quantization, a relative
// error well under 1 % on Gaussian data.
func TestDotQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var num, den float64
	for i := 0; i < 50; i++ {
		row, v, x := randQ8(r, 24)
		got := float64(DotQ8(row, v))
		want := float64(Dot(Q8_0, row, x))
		num += (got - want) * (got - want)
		den += want * want
	}
	if e := math.Sqrt(num / den); e > 0.01 || math.IsNaN(e) {
		t.Fatalf("relative error %.4f", e)
	}
}

// TestQuantizeQ8 checks the round trip and that zero blocks stay zero.
func TestQuantizeQ8(t *testing.T) {
	x := make([]float32, 64)
	for i := range 32 {
		x[i] = float32(i) - 15.5
	}
	var v Q8Vec
	QuantizeQ8(x, &v)
	if v.D[1] != 0 || v.Q[40] != 0 {
		t.Fatalf("zero block: d=%v q=%v", v.D[1], v.Q[32:])
	}
	for i := range 32 {
		if d := math.Abs(float64(v.D[0]*float32(v.Q[i]) - x[i])); d > float64(v.D[0])/2+1e-6 {
			t.Fatalf("x[%d]=%v decodes to %v", i, x[i], v.D[0]*float32(v.Q[i]))
		}
		if v.Q[i] < -127 {
			t.Fatalf("q[%d] = %d", i, v.Q[i])
		}
	}
}

func BenchmarkDotQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	const rows, nb = 768, 9 // 768×288
	data := make([]byte, rows*nb*34)
	for i := range data {
		data[i] = byte(r.IntN(256))
	}
	_, v, x := randQ8(r, nb)
	b.Run("int8", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j := 0; j < rows; j++ {
				DotQ8(data[j*nb*34:(j+1)*nb*34], v)
			}
		}
		b.ReportMetric(float64(rows*nb*32*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
	b.Run("int8-go", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j := 0; j < rows; j++ {
				q8DotGo(data[j*nb*34:(j+1)*nb*34], v.Q, v.D, nb)
			}
		}
		b.ReportMetric(float64(rows*nb*32*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
	b.Run("float", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j := 0; j < rows; j++ {
				Dot(Q8_0, data[j*nb*34:(j+1)*nb*34], x)
			}
		}
		b.ReportMetric(float64(rows*nb*32*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
}

// TestMulMatQ8MatchesDotQ8 checks the batched Q8_0 product (two rows by
// four inputs, groups of two or three, leftover rows and inputs, -128
// weights) against DotQ8 bit for bit, and that only rows [lo, hi) are
// written.
func TestMulMatQ8MatchesDotQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9} {
		for _, nb := range []int{1, 3, 9} {
			for _, span := range [][2]int{{0, 37}, {3, 20}, {16, 32}, {5, 6}} {
				lo, hi := span[0], span[1]
				rows := hi + 1
				rowBytes := nb * 34
				m := make([]byte, 0, rows*rowBytes)
				for k := 0; k < rows; k++ {
					row, _, _ := randQ8(r, nb)
					m = append(m, row...)
				}
				xs, outs := make([]Q8Vec, n), make([][]float32, n)
				for i := range xs {
					_, v, _ := randQ8(r, nb)
					xs[i] = *v
					outs[i] = make([]float32, rows)
					for k := range outs[i] {
						outs[i][k] = -7
					}
				}
				MulMatQ8(outs, m, rowBytes, lo, hi, xs)
				for i := range xs {
					for k := 0; k < rows; k++ {
						got := outs[i][k]
						if k < lo || k >= hi {
							if got != -7 {
								t.Fatalf("n=%d nb=%d [%d,%d): wrote row %d", n, nb, lo, hi, k)
							}
							continue
						}
						want := DotQ8(m[k*rowBytes:(k+1)*rowBytes], &xs[i])
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Errorf("n=%d nb=%d [%d,%d) input %d row %d: %v, DotQ8 %v", n, nb, lo, hi, i, k, got, want)
						}
					}
				}
			}
		}
	}
}

func BenchmarkMulMatQ8(b *testing.B) {
	const rows, nb = 768, 9
	r := rand.New(rand.NewPCG(1, 1))
	m := make([]byte, 0, rows*nb*34)
	for k := 0; k < rows; k++ {
		row, _, _ := randQ8(r, nb)
		m = append(m, row...)
	}
	for _, n := range []int{1, 4, 8} {
		xs, outs := make([]Q8Vec, n), make([][]float32, n)
		for i := range xs {
			_, v, _ := randQ8(r, nb)
			xs[i], outs[i] = *v, make([]float32, rows)
		}
		b.Run(fmt.Sprintf("768x288/inputs=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				MulMatQ8(outs, m, nb*34, 0, rows, xs)
			}
			b.ReportMetric(float64(rows*nb*32*n*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// TestQuantizeQ8MatchesGo checks the quantizer in use (AVX-512 assembly on
// amd64) against the pure-Go one bit for bit: Gaussian blocks, zero
// blocks, halves that round to even, and a wide range of magnitudes.
func TestQuantizeQ8MatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, nb := range []int{1, 2, 9, 24} {
		for k := 0; k < 4; k++ {
			x := make([]float32, nb*32)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(12)-6)))
			}
			switch k {
			case 1:
				clear(x[:32])
			case 2: // d = 1: x/d hits every half from -126.5 to 126.5
				for i := range 32 {
					x[i] = float32(i)*8 - 126.5
				}
				x[31] = 127
			case 3:
				x[0] = -x[0] * 1e6
			}
			var v Q8Vec
			QuantizeQ8(x, &v)
			q, d := make([]int8, nb*32), make([]float32, nb)
			quantizeQ8Go(x, q, d, nb)
			for b := range d {
				if math.Float32bits(v.D[b]) != math.Float32bits(d[b]) {
					t.Fatalf("nb=%d case %d block %d: d %v, Go %v", nb, k, b, v.D[b], d[b])
				}
			}
			for i := range q {
				if v.Q[i] != q[i] {
					t.Fatalf("nb=%d case %d: q[%d] %d, Go %d (x %v)", nb, k, i, v.Q[i], q[i], x[i])
				}
			}
		}
	}
}
