package gguf

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMulRowsF32MatchesGo checks the multi-row kernel against the pure-Go
// dot product for row counts that leave 0-3 rows over and lengths with
// every kind of tail (masked steps below 16, a 16 step after the 32s).
func TestMulRowsF32MatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 13} {
		for _, cols := range []int{1, 2, 7, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 100, 288, 301, 768} {
			m := make([]float32, rows*cols) // exactly: the last row ends the slice
			x := make([]float32, cols)
			for i := range m {
				m[i] = rng.Float32()*2 - 1
			}
			for i := range x {
				x[i] = rng.Float32()*2 - 1
			}
			out := make([]float32, rows+1)
			out[rows] = 42
			MulRowsF32(out[:rows], m, cols, x)
			if out[rows] != 42 {
				t.Fatalf("rows=%d cols=%d: wrote past out", rows, cols)
			}
			for r := 0; r < rows; r++ {
				want := dotF32Go(m[r*cols:(r+1)*cols], x)
				if d := out[r] - want; d > 1e-4*(1+abs32(want)) || -d > 1e-4*(1+abs32(want)) {
					t.Errorf("rows=%d cols=%d row %d: %v, pure Go %v", rows, cols, r, out[r], want)
				}
				// A row's value does not depend on the rows around it.
				var one [1]float32
				MulRowsF32(one[:], m[r*cols:(r+1)*cols], cols, x)
				if one[0] != out[r] {
					t.Errorf("rows=%d cols=%d row %d: %v alone, %v among others", rows, cols, r, one[0], out[r])
				}
			}
		}
	}
}

func TestMulRowsF32Empty(t *testing.T) {
	out := []float32{1, 2}
	MulRowsF32(out, nil, 0, nil)
	if out[0] != 0 || out[1] != 0 {
		t.Errorf("zero columns: %v, want zeros", out)
	}
	MulRowsF32(nil, nil, 5, nil)
	defer func() {
		if recover() == nil {
			t.Error("short matrix did not panic")
		}
	}()
	MulRowsF32(make([]float32, 2), make([]float32, 9), 5, make([]float32, 5))
}

func BenchmarkMulRowsF32(b *testing.B) {
	for _, shape := range []struct{ rows, cols int }{{768, 288}, {32000, 288}} {
		a, x := make([]float32, shape.rows*shape.cols), make([]float32, shape.cols)
		for i := range a {
			a[i] = float32(i % 17)
		}
		out := make([]float32, shape.rows)
		name := func(k string) string { return fmt.Sprintf("%s/%dx%d", k, shape.rows, shape.cols) }
		b.Run(name("MulRowsF32"), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				MulRowsF32(out, a, shape.cols, x)
			}
			b.ReportMetric(float64(shape.rows*shape.cols*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
		b.Run(name("DotF32"), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for r := range out {
					out[r] = DotF32(a[r*shape.cols:(r+1)*shape.cols], x)
				}
			}
			b.ReportMetric(float64(shape.rows*shape.cols*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// TestMulMatF32EqualsMulRows checks the batched kernel (four rows by four
// inputs, leftover rows and inputs) against MulRowsF32 exactly and the
// pure-Go dot product approximately, and that it writes only rows
// [lo, hi).
func TestMulMatF32EqualsMulRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 4, 5, 8, 9} {
		for _, cols := range []int{1, 9, 16, 40, 288} {
			for _, span := range [][2]int{{0, 37}, {3, 21}, {16, 32}, {5, 6}} {
				lo, hi := span[0], span[1]
				rows := hi + 2
				m := make([]float32, rows*cols)
				for i := range m {
					m[i] = rng.Float32()*2 - 1
				}
				xs, outs := make([][]float32, n), make([][]float32, n)
				for i := range xs {
					xs[i] = make([]float32, cols)
					for j := range xs[i] {
						xs[i][j] = rng.Float32()*2 - 1
					}
					outs[i] = make([]float32, rows)
					for r := range outs[i] {
						outs[i][r] = -7
					}
				}
				MulMatF32(outs, m, cols, lo, hi, xs)
				for i := range xs {
					want := make([]float32, hi-lo)
					MulRowsF32(want, m[lo*cols:hi*cols], cols, xs[i])
					for r := 0; r < rows; r++ {
						got := outs[i][r]
						if r < lo || r >= hi {
							if got != -7 {
								t.Fatalf("n=%d cols=%d [%d,%d): wrote row %d of input %d", n, cols, lo, hi, r, i)
							}
							continue
						}
						if got != want[r-lo] {
							t.Errorf("n=%d cols=%d [%d,%d) input %d row %d: %v, alone %v", n, cols, lo, hi, i, r, got, want[r-lo])
						}
						ref := dotF32Go(m[r*cols:(r+1)*cols], xs[i])
						if d := got - ref; d > 1e-4*(1+abs32(ref)) || -d > 1e-4*(1+abs32(ref)) {
							t.Errorf("n=%d cols=%d input %d row %d: %v, pure Go %v", n, cols, i, r, got, ref)
						}
					}
				}
			}
		}
	}
}

func BenchmarkMulMatF32(b *testing.B) {
	const rows, cols = 768, 288
	a := make([]float32, rows*cols)
	for i := range a {
		a[i] = float32(i % 17)
	}
	for _, n := range []int{1, 4, 8} {
		xs, outs := make([][]float32, n), make([][]float32, n)
		for i := range xs {
			xs[i], outs[i] = make([]float32, cols), make([]float32, rows)
		}
		b.Run(fmt.Sprintf("%dx%d/inputs=%d", rows, cols, n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				MulMatF32(outs, a, cols, 0, rows, xs)
			}
			b.ReportMetric(float64(rows*cols*n*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// TestMulRowsStrideF32 checks rows that start stride elements apart (the
// last row ending the slice) against the pure-Go dot product and against
// the same rows packed for MulRowsF32, exactly.
func TestMulRowsStrideF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, rows := range []int{1, 3, 4, 6, 9} {
		for _, sh := range [][2]int{{48, 288}, {48, 96}, {7, 8}, {17, 40}, {64, 64}} {
			cols, stride := sh[0], sh[1]
			m := make([]float32, (rows-1)*stride+cols)
			for i := range m {
				m[i] = rng.Float32()*2 - 1
			}
			x := make([]float32, cols)
			for i := range x {
				x[i] = rng.Float32()*2 - 1
			}
			out := make([]float32, rows)
			MulRowsStrideF32(out, m, stride, cols, x)
			packed := make([]float32, rows*cols)
			for r := 0; r < rows; r++ {
				copy(packed[r*cols:(r+1)*cols], m[r*stride:r*stride+cols])
			}
			same := make([]float32, rows)
			MulRowsF32(same, packed, cols, x)
			for r := range out {
				ref := dotF32Go(m[r*stride:r*stride+cols], x)
				if d := out[r] - ref; d > 1e-4*(1+abs32(ref)) || -d > 1e-4*(1+abs32(ref)) {
					t.Errorf("rows=%d cols=%d stride=%d row %d: %v, pure Go %v", rows, cols, stride, r, out[r], ref)
				}
				if out[r] != same[r] {
					t.Errorf("rows=%d cols=%d stride=%d row %d: %v strided, %v packed", rows, cols, stride, r, out[r], same[r])
				}
			}
		}
	}
}

// TestWeightedSumF32 checks the weighted row sum against pure Go for
// column counts on both sides of the 64-column chunks and the 16-lane
// masks, with the last row ending the slice and out longer than cols.
func TestWeightedSumF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, rows := range []int{1, 2, 5, 33} {
		for _, sh := range [][2]int{{48, 288}, {1, 1}, {15, 20}, {16, 16}, {17, 40}, {64, 64}, {65, 100}, {130, 130}} {
			cols, stride := sh[0], sh[1]
			m := make([]float32, (rows-1)*stride+cols)
			for i := range m {
				m[i] = rng.Float32()*2 - 1
			}
			w := make([]float32, rows)
			for i := range w {
				w[i] = rng.Float32()
			}
			out := make([]float32, cols+1)
			out[cols] = 42
			WeightedSumF32(out[:cols], m, stride, w)
			if out[cols] != 42 {
				t.Fatalf("rows=%d cols=%d: wrote past out", rows, cols)
			}
			want := make([]float32, cols)
			weightedSumGo(want, m, stride, w)
			for j := range want {
				if d := out[j] - want[j]; d > 1e-4*(1+abs32(want[j])) || -d > 1e-4*(1+abs32(want[j])) {
					t.Errorf("rows=%d cols=%d stride=%d col %d: %v, pure Go %v", rows, cols, stride, j, out[j], want[j])
				}
			}
		}
	}
}
