package gguf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// kBlockBytes is the block size of the K-quant types KMatrix takes.
func kBlockBytes(t TensorType) int {
	if t == Q4_K {
		return 144
	}
	return 210
}

// randKRow returns a random row of nb blocks of t: every code, scale and
// min byte random, the f16 scales normal (random bytes could be NaN).
func randKRow(r *rand.Rand, t TensorType, nb int) []byte {
	bs := kBlockBytes(t)
	row := make([]byte, nb*bs)
	for i := range row {
		row[i] = byte(r.IntN(256))
	}
	for b := 0; b < nb; b++ {
		blk := row[b*bs : (b+1)*bs]
		d := F32ToF16(float32(r.NormFloat64() * 0.01))
		if t == Q4_K {
			dmin := F32ToF16(float32(r.NormFloat64() * 0.01))
			blk[0], blk[1], blk[2], blk[3] = byte(d), byte(d>>8), byte(dmin), byte(dmin>>8)
		} else {
			blk[208], blk[209] = byte(d), byte(d>>8)
		}
	}
	return row
}

// kExtreme rewrites block 0 of row to the largest products: every code
// at its maximum, the largest scales (Q4_K: 63 and min 63, Q6_K: -128)
// and f16 scales near 65504, and sets the first 256 values of x to
// sign·127 (the first block of the row against x).
func kExtreme(t TensorType, row []byte, x []int8, sign int8) {
	big := F32ToF16(60000)
	if t == Q4_K {
		row[0], row[1], row[2], row[3] = byte(big), byte(big>>8), byte(big), byte(big>>8)
		for i := 4; i < 144; i++ {
			row[i] = 0xff
		}
	} else {
		for i := 0; i < 192; i++ {
			row[i] = 0xff
		}
		for i := 192; i < 208; i++ {
			row[i] = 0x80
		}
		row[208], row[209] = byte(big), byte(big>>8)
	}
	for i := 0; i < 256; i++ {
		x[i] = 127 * sign
	}
}

func randQ8Input(r *rand.Rand, n int) (*Q8Vec, []float32) {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	if r.IntN(2) == 0 { // one block of tiny values, one of large
		for i := 0; i < 32; i++ {
			x[i] *= 1e-6
			x[n-1-i] *= 1e4
		}
	}
	var v Q8Vec
	QuantizeQ8(x, &v)
	return &v, x
}

// TestKDotMatchesDequantized checks DotQ4K and DotQ6K against the float
// path (Dequantize, then a float64 dot product with the unquantized
// input). The only difference allowed is the activations' quantization:
// each x differs from dx·q by at most dx/2, so |error| ≤ Σ|w|·dx/2 over
// the row, plus float32 rounding (1e-5 of Σ|w·x|).
func TestKDotMatchesDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, typ := range []TensorType{Q4_K, Q6_K} {
		for _, nb := range []int{1, 2, 7} {
			for k := 0; k < 20; k++ {
				row := randKRow(r, typ, nb)
				v, x := randQ8Input(r, nb*256)
				w := make([]float32, nb*256)
				Dequantize(typ, row, w)
				var want, bound, mag float64
				for i := range w {
					want += float64(w[i]) * float64(x[i])
					bound += math.Abs(float64(w[i])) * float64(v.D[i/32]) / 2
					mag += math.Abs(float64(w[i]) * float64(x[i]))
				}
				dot := DotQ4K
				if typ == Q6_K {
					dot = DotQ6K
				}
				got := dot(row, v)
				if d := math.Abs(float64(got) - want); d > bound*1.001+1e-5*mag {
					t.Fatalf("%s nb=%d: %v, float %v: error %g over the bound %g", typ, nb, got, want, d, bound)
				}
			}
		}
	}
}

// TestKMatrixMatchesGo checks KMatrix.MulMat on every path against the
// pure-Go kernels bit for bit: odd row counts and ranges that start and
// end inside a group of 16, 1 to 17 inputs (more than one kernel call of
// eight, or of four with AVX2), one block to many, and extreme blocks (every code, scale and
// min at its maximum against ±127). Rows outside [lo, hi) must not be
// written.
func TestKMatrixMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, typ := range []TensorType{Q4_K, Q6_K} {
		bs := kBlockBytes(typ)
		ref := q4KDotGo
		if typ == Q6_K {
			ref = q6KDotGo
		}
		for _, path := range kPaths() {
			for _, n := range []int{1, 2, 3, 8, 9, 17} {
				for _, nb := range []int{1, 3, 11} {
					for _, span := range [][3]int{{0, 37, 37}, {3, 20, 21}, {16, 32, 33}, {5, 6, 7}, {17, 31, 40}} {
						lo, hi, rows := span[0], span[1], span[2]
						m := make([]byte, 0, rows*nb*bs)
						for k := 0; k < rows; k++ {
							m = append(m, randKRow(r, typ, nb)...)
						}
						xs, outs := make([]Q8Vec, n), make([][]float32, n)
						for i := range xs {
							v, _ := randQ8Input(r, nb*256)
							xs[i] = *v
							outs[i] = make([]float32, rows)
							for k := range outs[i] {
								outs[i][k] = -7
							}
						}
						if nb == 3 {
							kExtreme(typ, m[lo*nb*bs:], xs[0].Q, 1)
							kExtreme(typ, m[(hi-1)*nb*bs+2*bs:], xs[n-1].Q[512:], -1)
						}
						q, err := newKMatrix(typ, m, rows, nb*bs, path)
						if err != nil {
							t.Fatal(err)
						}
						q.MulMat(outs, lo, hi, xs)
						name := fmt.Sprintf("%s path=%d n=%d nb=%d [%d,%d)", typ, path, n, nb, lo, hi)
						for i := range xs {
							for k := 0; k < rows; k++ {
								got := outs[i][k]
								if k < lo || k >= hi {
									if got != -7 {
										t.Fatalf("%s: wrote row %d", name, k)
									}
									continue
								}
								want := ref(m[k*nb*bs:(k+1)*nb*bs], xs[i].Q, xs[i].D, nb)
								if math.Float32bits(got) != math.Float32bits(want) {
									t.Fatalf("%s input %d row %d: %v, Go %v", name, i, k, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestKDotExtremes checks the pure-Go kernels on the extreme blocks
// against the float path exactly where no rounding can occur: with all
// codes at their maximum and x = ±127 in every lane, the sums are known
// in closed form.
func TestKDotExtremes(t *testing.T) {
	for _, typ := range []TensorType{Q4_K, Q6_K} {
		row := make([]byte, kBlockBytes(typ))
		x := &Q8Vec{Q: make([]int8, 256), D: make([]float32, 8)}
		for i := range x.D {
			x.D[i] = 1
		}
		kExtreme(typ, row, x.Q, 1)
		w := make([]float32, 256)
		Dequantize(typ, row, w)
		var want float64
		for i := range w {
			want += float64(w[i]) * 127
		}
		dot := DotQ4K
		if typ == Q6_K {
			dot = DotQ6K
		}
		got := dot(row, x)
		if math.Abs(float64(got)-want) > 1e-6*math.Abs(want) {
			t.Errorf("%s: %v, float %v", typ, got, want)
		}
	}
}

func TestNewKMatrixRejects(t *testing.T) {
	for _, c := range []struct {
		t              TensorType
		n, rows, rowsB int
	}{{Q8_0, 34, 1, 34}, {Q4_K, 144, 1, 143}, {Q6_K, 209, 1, 210}, {Q4_K, 144, -1, 144}} {
		if _, err := NewKMatrix(c.t, make([]byte, c.n), c.rows, c.rowsB); err == nil {
			t.Errorf("NewKMatrix(%s, %d bytes, %d rows of %d) = nil error", c.t, c.n, c.rows, c.rowsB)
		}
	}
}

// BenchmarkKMatrix: 512 rows of 2,048 (in L2) by 1 and 8 inputs on
// every path this CPU runs.
func BenchmarkKMatrix(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, typ := range []TensorType{Q4_K, Q6_K} {
		bs := kBlockBytes(typ)
		const rows, nb = 512, 8
		m := make([]byte, 0, rows*nb*bs)
		for k := 0; k < rows; k++ {
			m = append(m, randKRow(r, typ, nb)...)
		}
		for _, path := range kPaths() {
			for _, n := range []int{1, 8} {
				q, _ := newKMatrix(typ, m, rows, nb*bs, path)
				xs, outs := make([]Q8Vec, n), make([][]float32, n)
				for i := range xs {
					v, _ := randQ8Input(r, nb*256)
					xs[i], outs[i] = *v, make([]float32, rows)
				}
				b.Run(fmt.Sprintf("%s/%s/n=%d", typ, []string{"go", "avx2", "vnni"}[path], n), func(b *testing.B) {
					for b.Loop() {
						q.MulMat(outs, 0, rows, xs)
					}
					b.ReportMetric(float64(rows*nb*256*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
				})
			}
		}
	}
}

// TestKOffsetsShared checks MulMatOffsets with offsets computed in two
// disjoint ranges of inputs and by another matrix of the same type and
// width, over rows split into several calls, against MulMat bit for bit;
// and that offsets of another type or input count are refused.
func TestKOffsetsShared(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	const rows, nb, n = 40, 3, 11
	for _, typ := range []TensorType{Q4_K, Q6_K} {
		bs := kBlockBytes(typ)
		var data [2][]byte
		for k := range data {
			for j := 0; j < rows; j++ {
				data[k] = append(data[k], randKRow(r, typ, nb)...)
			}
		}
		xs := make([]Q8Vec, n)
		for i := range xs {
			v, _ := randQ8Input(r, nb*256)
			xs[i] = *v
		}
		for _, path := range kPaths() {
			a, err := newKMatrix(typ, data[0], rows, nb*bs, path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := newKMatrix(typ, data[1], rows, nb*bs, path)
			if err != nil {
				t.Fatal(err)
			}
			var o KOffsets
			b.Offsets(xs, 0, 0, &o)
			b.Offsets(xs, 5, n, &o)
			b.Offsets(xs, 0, 5, &o)
			want, got := make([][]float32, n), make([][]float32, n)
			for i := range want {
				want[i], got[i] = make([]float32, rows), make([]float32, rows)
			}
			a.MulMat(want, 0, rows, xs)
			for _, s := range [][2]int{{0, 16}, {16, 19}, {19, 40}} {
				a.MulMatOffsets(got, s[0], s[1], xs, &o)
			}
			for i := range want {
				for k := range want[i] {
					if math.Float32bits(got[i][k]) != math.Float32bits(want[i][k]) {
						t.Fatalf("%s path=%d input %d row %d: %v, MulMat %v", typ, path, i, k, got[i][k], want[i][k])
					}
				}
			}
			if path == kPathGo {
				continue
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s path=%d: offsets of %d inputs taken for %d", typ, path, n, n-1)
					}
				}()
				a.MulMatOffsets(got, 0, rows, xs[:n-1], &o)
			}()
		}
	}
}
