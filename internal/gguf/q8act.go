package gguf

import "math"

// Q8Vec is a float32 vector quantized as llama.cpp quantizes activations
// for its q8_0 dot products: blocks of 32 int8 values in [-127, 127] with
// one float32 scale each (llama.cpp stores the scale as f16; float32 is
// kept here, which is more exact). A Q8_0 row times a Q8Vec is then an
// int32 sum of int8×int8 products per block, times the two scales.
type Q8Vec struct {
	Q []int8
	D []float32
}

// QuantizeQ8 quantizes x (a multiple of 32 elements) into v, reusing v's
// storage: per block d = max|x|/127 and q = round(x/d).
func QuantizeQ8(x []float32, v *Q8Vec) {
	nb := len(x) / 32
	if cap(v.Q) < nb*32 {
		v.Q = make([]int8, nb*32)
	}
	if cap(v.D) < nb {
		v.D = make([]float32, nb)
	}
	v.Q, v.D = v.Q[:nb*32], v.D[:nb]
	if nb > 0 {
		quantizeQ8(x[:nb*32], v.Q, v.D, nb)
	}
}

// quantizeQ8Go is QuantizeQ8's arithmetic in pure Go, and the reference
// the assembly version is tested against bit for bit.
func quantizeQ8Go(x []float32, qs []int8, ds []float32, nb int) {
	for b := 0; b < nb; b++ {
		xx := (*[32]float32)(x[b*32 : b*32+32])
		q := (*[32]int8)(qs[b*32 : b*32+32])
		var amax float32
		for _, f := range xx {
			amax = max(amax, absF32(f))
		}
		d := amax / 127
		ds[b] = d
		if d == 0 {
			clear(q[:])
			continue
		}
		id := 1 / d
		for j, f := range xx {
			// |f*id| ≤ 127 up to rounding; the clamp keeps -128 out, which
			// the AVX2 kernel's sign trick cannot negate.
			r := math.RoundToEven(float64(f * id))
			q[j] = int8(max(-127, min(127, r)))
		}
	}
}

func absF32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// DotQ8 returns the dot product of one Q8_0 row (whole blocks) with x,
// quantized by QuantizeQ8 from a vector of the row's length: per block the
// int32 sum of int8×int8 products times both scales. On amd64 with AVX2 it
// is assembly giving the same bits as the pure-Go kernel.
func DotQ8(row []byte, x *Q8Vec) float32 {
	return q8Dot(row, x.Q, x.D, len(row)/34)
}

// q8DotGo is the portable kernel and the reference the assembly one is
// tested against, bit for bit.
func q8DotGo(row []byte, x []int8, xd []float32, nb int) float32 {
	var s float32
	for b := 0; b < nb; b++ {
		blk := (*[34]byte)(row[b*34 : b*34+34])
		xx := (*[32]int8)(x[b*32 : b*32+32])
		var s0, s1, s2, s3 int32
		for j := 0; j < 32; j += 4 {
			s0 += int32(int8(blk[2+j])) * int32(xx[j])
			s1 += int32(int8(blk[3+j])) * int32(xx[j+1])
			s2 += int32(int8(blk[4+j])) * int32(xx[j+2])
			s3 += int32(int8(blk[5+j])) * int32(xx[j+3])
		}
		dw := F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		// The conversion keeps the product rounded on its own: without it
		// the compiler may fuse it with the sum (GOAMD64=v3, arm64), which
		// the assembly kernels do not.
		s += float32(float32((s0+s1)+(s2+s3)) * float32(dw*xd[b]))
	}
	return s
}

// MulMatQ8 sets outs[i][r] to DotQ8(row r of m, &xs[i]) for every input i
// and every row r in [lo, hi), m being rows of rowBytes bytes (whole Q8_0
// blocks) and every xs[i] quantized from a vector of the rows' length.
// With AVX2 it multiplies two rows by four inputs at a time, so each
// weight block is loaded once for four inputs; every value is bit for bit
// DotQ8's, so batching never changes results.
func MulMatQ8(outs [][]float32, m []byte, rowBytes, lo, hi int, xs []Q8Vec) {
	if hi <= lo || len(xs) == 0 {
		return
	}
	nb := rowBytes / 34
	if rowBytes%34 != 0 || len(m) < hi*rowBytes || len(outs) < len(xs) {
		panic("gguf: MulMatQ8 with a short matrix or outputs")
	}
	for i := range xs {
		if len(xs[i].Q) < nb*32 || len(xs[i].D) < nb || len(outs[i]) < hi {
			panic("gguf: MulMatQ8 with a short input or output")
		}
	}
	if nb == 0 {
		for _, o := range outs[:len(xs)] {
			clear(o[lo:hi])
		}
		return
	}
	mulMatQ8(outs, m, rowBytes, lo, hi, xs)
}

// mulMatQ8Each is MulMatQ8 with one DotQ8 per row and input, mulMatBlock
// rows at a time.
func mulMatQ8Each(outs [][]float32, m []byte, rowBytes, lo, hi int, xs []Q8Vec) {
	for rb := lo; rb < hi; rb += mulMatBlock {
		re := min(rb+mulMatBlock, hi)
		for i := range xs {
			o := outs[i]
			for r := rb; r < re; r++ {
				o[r] = DotQ8(m[r*rowBytes:(r+1)*rowBytes], &xs[i])
			}
		}
	}
}
