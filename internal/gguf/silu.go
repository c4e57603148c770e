package gguf

import "math"

// SiLUMul sets g[j] = silu(g[j]) · u[j] = g[j] / (1 + e^-g[j]) · u[j] for
// every j < len(g) (u at least as long): the gated feed-forward of LLaMA
// models. e^x is expF32, a float32 approximation within 2 ulp of the
// correctly rounded exponential; on amd64 with AVX-512 it runs 16
// elements at a time, bit for bit as the Go code, so results never depend
// on the CPU's path nor on the slice's length.
func SiLUMul(g, u []float32) {
	u = u[:len(g)]
	n := siluMul(g, u)
	for j := n; j < len(g); j++ {
		g[j] = siluMulOne(g[j], u[j])
	}
}

// siluMulOne is SiLUMul for one element, the reference for the assembly.
func siluMulOne(g, u float32) float32 {
	return g / (1 + expF32(-g)) * u
}

// expF32's constants: Cephes' expf (range reduction by n·ln 2 in two
// parts, C1 having few enough bits that n·C1 is exact, and a degree-5
// polynomial on [-ln 2/2, ln 2/2]). The clamp keeps 2^n a normal float32
// (n in [-126, 127]). The assembly holds the same values as bits.
const (
	expMax   = 88.0
	expMin   = -87.0
	expLog2e = 1.44269504088896341
	expC1    = 0.693359375
	expC2    = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
)

// expF32 is e^x for x clamped to [expMin, expMax]. Every operation is
// rounded to float32 on its own (the conversions stop the compiler from
// fusing a multiply and an add), as the assembly computes it.
func expF32(x float32) float32 {
	x = max(expMin, min(expMax, x))
	n := float32(math.RoundToEven(float64(x * expLog2e)))
	r := x - float32(n*expC1)
	r = r - float32(n*expC2)
	p := float32(expP0)
	p = float32(p*r) + expP1
	p = float32(p*r) + expP2
	p = float32(p*r) + expP3
	p = float32(p*r) + expP4
	p = float32(p*r) + expP5
	z := float32(r * r)
	e := float32(p*z) + r
	e = e + 1
	return float32(e * math.Float32frombits(uint32(int32(n)+127)<<23))
}

// ExpShift sets x[t] = e^(x[t]-m) (expF32) for every t: the exponentials
// of a softmax whose largest value is m. On amd64 with AVX-512 whole
// blocks of 16 run in assembly, bit for bit as the Go code.
func ExpShift(x []float32, m float32) {
	n := expShift(x, m)
	for t := n; t < len(x); t++ {
		x[t] = expF32(x[t] - m)
	}
}
