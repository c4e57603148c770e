package gguf

import (
	"math"
	"math/rand/v2"
	"testing"
)

// argMaxLoop is ArgMax's definition.
func argMaxLoop(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestArgMax checks ArgMax against its defining loop: lengths with and
// without a tail, the maximum in a block or in the tail, ties (the first
// wins), NaNs (skipped; x[0] NaN gives 0), -Inf everywhere, ±0.
func TestArgMax(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, n := range []int{1, 2, 15, 16, 17, 32, 100, 32000} {
		for c := 0; c < 8; c++ {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			switch c {
			case 1: // ties: the first of equal maxima
				x[n/2], x[n-1] = 10, 10
			case 2: // NaNs around a maximum
				x[n-1] = nan
				x[n/3] = 7
				x[n/2] = nan
			case 3:
				x[0] = nan
			case 4:
				for i := range x {
					x[i] = -inf
				}
			case 5: // zeros of both signs are equal
				for i := range x {
					x[i] = float32(math.Copysign(0, float64(i%2*2-1)))
				}
			case 6: // the maximum in the tail
				x[n-1] = 50
			case 7:
				x[r.IntN(n)] = inf
			}
			if got, want := ArgMax(x), argMaxLoop(x); got != want {
				t.Fatalf("n=%d case %d: %d, want %d", n, c, got, want)
			}
		}
	}
}
