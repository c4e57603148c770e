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
