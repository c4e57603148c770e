package gguf

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpF32 checks the float32 exponential against math.Exp: within
// 2 ulp (relative 2.5e-7) over the whole clamped range, and the clamp.
func TestExpF32(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	worst := 0.0
	for i := 0; i < 200000; i++ {
		x := float32(expMin + r.Float64()*(expMax-expMin))
		if i < 1000 {
			x = float32(r.NormFloat64())
		}
		got, want := float64(expF32(x)), math.Exp(float64(x))
		worst = max(worst, math.Abs(got-want)/want)
	}
	t.Logf("worst relative error %g", worst)
	if worst > 2.5e-7 {
		t.Fatalf("worst relative error %g", worst)
	}
	if expF32(1000) != expF32(expMax) || expF32(-1000) != expF32(expMin) || expF32(0) != 1 {
		t.Fatalf("clamp: %v %v %v", expF32(1000), expF32(-1000), expF32(0))
	}
}

// TestSiLUMulMatchesGo checks SiLUMul (AVX-512 assembly on amd64 for
// whole 16-element blocks) against siluMulOne bit for bit, on lengths
// with and without a tail and on values from tiny to past the clamp.
func TestSiLUMulMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 15, 16, 17, 48, 768, 777} {
		g, u := make([]float32, n), make([]float32, n)
		for j := range g {
			g[j] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(6)-3)))
			u[j] = float32(r.NormFloat64())
		}
		g[0] = 200 // past both ends of the clamp
		if n > 1 {
			g[1] = -200
		}
		want := make([]float32, n)
		for j := range g {
			want[j] = siluMulOne(g[j], u[j])
		}
		SiLUMul(g, u)
		for j := range g {
			if math.Float32bits(g[j]) != math.Float32bits(want[j]) {
				t.Fatalf("n=%d [%d]: %v, Go %v", n, j, g[j], want[j])
			}
		}
	}
	// silu itself: g/(1+e^-g) against float64.
	for _, g := range []float32{-20, -3, -0.5, 0, 0.25, 1, 4, 30} {
		got := siluOf(g)
		want := float64(g) / (1 + math.Exp(-float64(g)))
		if math.Abs(float64(got)-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("silu(%v) = %v, want %v", g, got, want)
		}
	}
}

// siluOf is silu(g) through SiLUMul.
func siluOf(g float32) float32 {
	x := []float32{g}
	SiLUMul(x, []float32{1})
	return x[0]
}

// TestExpShiftMatchesGo checks ExpShift (AVX-512 assembly on amd64 for
// whole blocks of 16) against expF32 bit for bit, tails included.
func TestExpShiftMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{1, 15, 16, 33, 257} {
		x := make([]float32, n)
		for j := range x {
			x[j] = float32(r.NormFloat64() * 20)
		}
		x[0] = -500
		m := float32(3.5)
		want := make([]float32, n)
		for j, v := range x {
			want[j] = expF32(v - m)
		}
		ExpShift(x, m)
		for j := range x {
			if math.Float32bits(x[j]) != math.Float32bits(want[j]) {
				t.Fatalf("n=%d [%d]: %v, Go %v", n, j, x[j], want[j])
			}
		}
	}
}
