package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestQuantRoundTrip quantises random rows with the reference quantisers,
// dequantises them and checks the error is within what each format's
// resolution allows; then checks Dot against a plain dot of the
// dequantised row.
func TestQuantRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Worst-case relative error (vs. the block's absolute max) per type.
	tol := map[TensorType]float64{F32: 0, F16: 1e-3, BF16: 8e-3, Q8_0: 1.0 / 127, Q4_0: 1.0 / 7, Q4_K: 0.15, Q6_K: 0.06}
	for _, typ := range SupportedTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			const n = 512
			x := randVec(r, n)
			enc, err := Quantize(typ, x)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != typ.RowBytes(n) {
				t.Fatalf("encoded %d bytes, want %d", len(enc), typ.RowBytes(n))
			}
			got := make([]float32, n)
			Dequantize(typ, enc, got)
			amax := float64(absMax(x))
			var worst float64
			for i := range x {
				worst = max(worst, math.Abs(float64(got[i]-x[i])))
			}
			if worst > tol[typ]*amax+1e-6 {
				t.Errorf("max error %g > %g", worst, tol[typ]*amax)
			}
			y := randVec(r, n)
			var want float64
			for i := range got {
				want += float64(got[i]) * float64(y[i])
			}
			if d := Dot(typ, enc, y); math.Abs(float64(d)-want) > 1e-3*(1+math.Abs(want)) {
				t.Errorf("Dot = %g, want %g", d, want)
			}
		})
	}
}

// The following tests build blocks byte by byte and check single elements
// against the formats' definitions, independently of the quantisers.

func TestQ4_0Layout(t *testing.T) {
	blk := make([]byte, 18)
	binary.LittleEndian.PutUint16(blk, F32ToF16(0.5))
	blk[2+3] = 0xA1 // element 3: 1-8 = -7; element 19: 10-8 = 2
	out := make([]float32, 32)
	Dequantize(Q4_0, blk, out)
	if out[3] != -3.5 || out[19] != 1 || out[0] != -4 {
		t.Errorf("got %v %v %v", out[3], out[19], out[0])
	}
}

func TestQ4_KLayout(t *testing.T) {
	blk := make([]byte, 144)
	binary.LittleEndian.PutUint16(blk, F32ToF16(0.5))   // d
	binary.LittleEndian.PutUint16(blk[2:], F32ToF16(2)) // dmin
	sc := blk[4:16]
	// sub-block 1: scale 3, min 1 (low 6 bits in bytes 1 and 5).
	sc[1], sc[5] = 3, 1
	// sub-block 5: scale 0x25 = 37 (low 4 bits in byte 9, high 2 in byte 1's top bits),
	// min 0x12 = 18 (low 4 in byte 9's high nibble, high 2 in byte 5's top bits).
	sc[9] = 0x5 | 0x2<<4
	sc[1] |= 0x2 << 6
	sc[5] |= 0x1 << 6
	q := blk[16:]
	q[4] = 0x70 // element 32+4 (sub-block 1) = 7
	q[64+6] = 0x90
	// element 64*2+32+6 = 166 is sub-block 5, high nibble of q[64+6] = 9
	out := make([]float32, 256)
	Dequantize(Q4_K, blk, out)
	if want := float32(0.5*3*7 - 2*1); out[36] != want {
		t.Errorf("element 36 = %v, want %v", out[36], want)
	}
	if want := float32(0.5*37*9 - 2*18); out[166] != want {
		t.Errorf("element 166 = %v, want %v", out[166], want)
	}
}

func TestQ6_KLayout(t *testing.T) {
	blk := make([]byte, 210)
	binary.LittleEndian.PutUint16(blk[208:], F32ToF16(0.25))
	scales := blk[192:208]
	for i := range scales {
		scales[i] = byte(int8(i - 8))
	}
	// Element 128+64+5 = 197: second half, l=5, q3 = ql[64+5]>>4 | ((qh[32+5]>>4)&3)<<4.
	blk[64+5] = 0xB0
	blk[128+32+5] = 0x2 << 4
	// Value: q = 0xB | 2<<4 = 43, minus 32 = 11; scale index 8 + 0 + 4 = 12 → 4.
	out := make([]float32, 256)
	Dequantize(Q6_K, blk, out)
	if want := float32(0.25 * 4 * 11); out[197] != want {
		t.Errorf("element 197 = %v, want %v", out[197], want)
	}
	// Element 0: q1 = 0 - 32, scale index 0 → -8.
	if want := float32(0.25 * -8 * -32); out[0] != want {
		t.Errorf("element 0 = %v, want %v", out[0], want)
	}
}

func TestHalfConversions(t *testing.T) {
	for _, v := range []float32{0, 1, -2.5, 65504, 6.1035156e-05, 5.9604645e-08, float32(math.Inf(-1))} {
		if got := F16ToF32(F32ToF16(v)); got != v {
			t.Errorf("f16 %v -> %v", v, got)
		}
		if got := BF16ToF32(F32ToBF16(v)); math.Abs(float64(got-v)) > math.Abs(float64(v))/128 {
			t.Errorf("bf16 %v -> %v", v, got)
		}
	}
	if !math.IsNaN(float64(F16ToF32(F32ToF16(float32(math.NaN()))))) {
		t.Error("NaN lost")
	}
}

func TestDotF32MatchesGo(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 31, 32, 33, 45, 64, 288, 1000} {
		a, b := make([]float32, n), make([]float32, n+3)
		for i := range a {
			a[i] = float32(i%13) - 6.5
			b[i] = float32(i%7) * 0.25
		}
		got, want := DotF32(a, b), dotF32Go(a, b)
		if d := got - want; d > 1e-3*(1+abs32(want)) || -d > 1e-3*(1+abs32(want)) {
			t.Errorf("n=%d: DotF32 %v, pure Go %v", n, got, want)
		}
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func BenchmarkDotF32(b *testing.B) {
	a, x := make([]float32, 768*288), make([]float32, 288)
	for i := range a {
		a[i] = float32(i % 17)
	}
	for _, k := range []struct {
		name string
		f    func(a, b []float32) float32
	}{{"DotF32", DotF32}, {"gonum", func(a, b []float32) float32 {
		return gonum.Implementation{}.Sdot(len(a), a, 1, b, 1)
	}}, {"go", dotF32Go}} {
		b.Run(k.name+"/768x288", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for r := 0; r < 768; r++ {
					_ = k.f(a[r*288:(r+1)*288], x)
				}
			}
			b.ReportMetric(float64(768*288*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

func TestDotManyMatchesDot(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 768
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(r.NormFloat64())
	}
	xs := make([][]float32, 3)
	for i := range xs {
		xs[i] = make([]float32, n)
		for j := range xs[i] {
			xs[i][j] = float32(r.NormFloat64())
		}
	}
	for _, typ := range SupportedTypes() {
		row, err := Quantize(typ, vals)
		if err != nil {
			t.Fatal(err)
		}
		sums := make([]float32, 3)
		DotMany(typ, row, xs, sums, make([]float32, DotChunk))
		for i, x := range xs {
			want := Dot(typ, row, x)
			if d := float64(sums[i] - want); math.Abs(d) > 1e-3*(1+math.Abs(float64(want))) {
				t.Errorf("%s input %d: DotMany %v, Dot %v", typ, i, sums[i], want)
			}
			one := make([]float32, 1)
			DotMany(typ, row, xs[i:i+1], one, make([]float32, DotChunk))
			if one[0] != sums[i] {
				t.Errorf("%s input %d: alone %v, with others %v", typ, i, one[0], sums[i])
			}
		}
	}
}

func BenchmarkDotMany(b *testing.B) {
	vals := make([]float32, 768*288)
	for i := range vals {
		vals[i] = float32(i%23) - 11
	}
	x := make([]float32, 288)
	for _, typ := range []TensorType{Q8_0, Q4_K, Q6_K, F16} {
		cols := 288
		if typ == Q4_K || typ == Q6_K {
			cols = 256
		}
		data, _ := Quantize(typ, vals[:768*cols])
		rb := typ.RowBytes(cols)
		b.Run(typ.String()+"/Dot", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for r := 0; r < 768; r++ {
					_ = Dot(typ, data[r*rb:(r+1)*rb], x)
				}
			}
			b.ReportMetric(float64(768*cols*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
		for _, n := range []int{1, 8} {
			xs := make([][]float32, n)
			for i := range xs {
				xs[i] = x
			}
			sums, buf := make([]float32, n), make([]float32, DotChunk)
			b.Run(fmt.Sprintf("%s/DotMany%d", typ, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					for r := 0; r < 768; r++ {
						DotMany(typ, data[r*rb:(r+1)*rb], xs, sums, buf)
					}
				}
				b.ReportMetric(float64(768*cols*n*b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	}
}

// TestDequantizeF16AllValues checks the inlined fast path against
// F16ToF32 on every half-precision value.
func TestDequantizeF16AllValues(t *testing.T) {
	src := make([]byte, 2<<16)
	for h := 0; h < 1<<16; h++ {
		binary.LittleEndian.PutUint16(src[2*h:], uint16(h))
	}
	dst := make([]float32, 1<<16)
	Dequantize(F16, src, dst)
	for h := range dst {
		if want := F16ToF32(uint16(h)); math.Float32bits(dst[h]) != math.Float32bits(want) {
			t.Fatalf("half %#04x: %v, want %v", h, dst[h], want)
		}
	}
}

// TestDequantizeQ80AllBytes checks the int8 conversion on every byte.
func TestDequantizeQ80AllBytes(t *testing.T) {
	src := make([]byte, 8*34)
	for b := 0; b < 8; b++ {
		binary.LittleEndian.PutUint16(src[b*34:], F32ToF16(0.37))
		for j := 0; j < 32; j++ {
			src[b*34+2+j] = byte(b*32 + j)
		}
	}
	dst := make([]float32, 256)
	Dequantize(Q8_0, src, dst)
	d := F16ToF32(F32ToF16(0.37))
	for i, v := range dst {
		if want := d * float32(int8(byte(i))); v != want {
			t.Fatalf("byte %#02x: %v, want %v", i, v, want)
		}
	}
}

// refDequantQ4K and refDequantQ6K are the straightforward decoders the
// optimised ones must match bit for bit.
func refDequantQ4K(blk []byte, out []float32) {
	d := F16ToF32(binary.LittleEndian.Uint16(blk))
	dmin := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
	scales := blk[4:16]
	q := blk[16:144]
	for j := 0; j < 4; j++ {
		sc1, m1 := scaleMinK4(2*j, scales)
		sc2, m2 := scaleMinK4(2*j+1, scales)
		d1, mm1 := d*float32(sc1), dmin*float32(m1)
		d2, mm2 := d*float32(sc2), dmin*float32(m2)
		for l := 0; l < 32; l++ {
			out[64*j+l] = d1*float32(q[32*j+l]&0xf) - mm1
			out[64*j+l+32] = d2*float32(q[32*j+l]>>4) - mm2
		}
	}
}

func refDequantQ6K(blk []byte, out []float32) {
	d := F16ToF32(binary.LittleEndian.Uint16(blk[208:]))
	for n := 0; n < 2; n++ {
		ql, qh, sc := blk[64*n:], blk[128+32*n:], blk[192+8*n:]
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int((ql[l]&0xf)|(qh[l]&3)<<4) - 32
			q2 := int((ql[l+32]&0xf)|((qh[l]>>2)&3)<<4) - 32
			q3 := int((ql[l]>>4)|((qh[l]>>4)&3)<<4) - 32
			q4 := int((ql[l+32]>>4)|((qh[l]>>6)&3)<<4) - 32
			out[128*n+l] = d * float32(int8(sc[is])) * float32(q1)
			out[128*n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			out[128*n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			out[128*n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
	}
}

func TestKQuantDecodersExact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, c := range []struct {
		size      int
		got, want func([]byte, []float32)
	}{{144, dequantQ4K, refDequantQ4K}, {210, dequantQ6K, refDequantQ6K}} {
		blk := make([]byte, c.size)
		a, b := make([]float32, 256), make([]float32, 256)
		for it := 0; it < 200; it++ {
			for i := range blk {
				blk[i] = byte(r.Uint32())
			}
			// Keep the f16 scales finite.
			for _, at := range []int{0, 2, 208} {
				if at+1 < c.size {
					binary.LittleEndian.PutUint16(blk[at:], F32ToF16(float32(r.NormFloat64())))
				}
			}
			c.got(blk, a)
			c.want(blk, b)
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("block size %d, element %d: %v, want %v", c.size, i, a[i], b[i])
				}
			}
		}
	}
}
