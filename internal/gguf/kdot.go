package gguf

// Integer dot products of K-quant rows (Q4_K, Q6_K) with activations
// quantized by QuantizeQ8, as llama.cpp's vec_dot_q4_K_q8_K and
// vec_dot_q6_K_q8_K compute them: the weight codes times the int8
// activations summed exactly in int32 per sub-block, the offsets (Q4_K's
// mins, Q6_K's -32) taken from sums of the activations, and only then
// floating point. Unlike llama.cpp the activations keep one scale per 32
// values (Q8Vec, the Q8_0 products' quantization) rather than per 256, so
// a 32-value activation block is the unit of the float arithmetic: Q4_K's
// sub-blocks are 32 values, Q6_K's two 16-value sub-blocks are combined
// in int32 first. The float steps below (kq4Step, kq6Step) are the fixed
// order every kernel follows, so every path gives the same bits.

// DotQ4K returns the dot product of one Q4_K row (whole blocks of 144
// bytes) with x, quantized by QuantizeQ8 from a vector of the row's
// length.
func DotQ4K(row []byte, x *Q8Vec) float32 {
	return q4KDotGo(row, x.Q, x.D, len(row)/144)
}

// DotQ6K returns the dot product of one Q6_K row (whole blocks of 210
// bytes) with x, quantized by QuantizeQ8 from a vector of the row's
// length.
func DotQ6K(row []byte, x *Q8Vec) float32 {
	return q6KDotGo(row, x.Q, x.D, len(row)/210)
}

// kq4Step adds one 32-value sub-block of a Q4_K row to acc: isum = Σ q·x
// over the sub-block (q the 4-bit codes), s = Σ x, dsc = d·scale and
// dmn = dmin·min of the sub-block (both exact in float32: an 11-bit
// mantissa times a 6-bit integer), dx the activation block's scale. The
// explicit conversions keep every product rounded on its own, so no
// compiler fuses them into FMAs the kernels do not use.
func kq4Step(acc float32, isum, s int32, dsc, dmn, dx float32) float32 {
	acc += float32(float32(float32(isum)*dsc) * dx)
	return acc - float32(dmn*kq4Min(s, dx))
}

// kq4Min is the activation side of a Q4_K sub-block's min term, dx·Σx,
// computed once per input and block by the batched kernels.
func kq4Min(s int32, dx float32) float32 { return float32(dx * float32(s)) }

// kq6Step adds one 32-value activation block of a Q6_K row to acc: isum
// = Σ over its two 16-value sub-blocks of scale·Σ (u-32)·x (u the 6-bit
// codes; |isum| < 2^24, so float32(isum) is exact), d the block's scale.
func kq6Step(acc float32, isum int32, d, dx float32) float32 {
	return acc + float32(float32(float32(isum)*d)*dx)
}

// q4KDotGo is the portable Q4_K kernel and the reference the assembly is
// tested against, bit for bit.
func q4KDotGo(row []byte, q []int8, xd []float32, nb int) float32 {
	var acc float32
	for b := 0; b < nb; b++ {
		blk := (*[144]byte)(row[b*144 : b*144+144])
		d := F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		dmin := F16ToF32(uint16(blk[2]) | uint16(blk[3])<<8)
		for c := 0; c < 4; c++ {
			qq := (*[32]byte)(blk[16+32*c : 48+32*c])
			x0 := (*[32]int8)(q[b*256+64*c : b*256+64*c+32])
			x1 := (*[32]int8)(q[b*256+64*c+32 : b*256+64*c+64])
			var i0, i1, s0, s1 int32
			for l := 0; l < 32; l++ {
				i0 += int32(qq[l]&15) * int32(x0[l])
				i1 += int32(qq[l]>>4) * int32(x1[l])
				s0 += int32(x0[l])
				s1 += int32(x1[l])
			}
			sc0, m0 := scaleMinK4(2*c, blk[4:16])
			sc1, m1 := scaleMinK4(2*c+1, blk[4:16])
			acc = kq4Step(acc, i0, s0, d*float32(sc0), dmin*float32(m0), xd[b*8+2*c])
			acc = kq4Step(acc, i1, s1, d*float32(sc1), dmin*float32(m1), xd[b*8+2*c+1])
		}
	}
	return acc
}

// q6KCodes decodes the 256 6-bit codes (0..63) of a Q6_K block in
// element order; element e has scale int8(blk[192+e/16]).
func q6KCodes(blk *[210]byte, u *[256]uint8) {
	for n := 0; n < 2; n++ {
		ql := (*[64]byte)(blk[64*n : 64*n+64])
		qh := (*[32]byte)(blk[128+32*n : 160+32*n])
		o := (*[128]uint8)(u[128*n : 128*n+128])
		for l := 0; l < 32; l++ {
			o[l] = ql[l]&0xf | (qh[l]&3)<<4
			o[l+32] = ql[l+32]&0xf | (qh[l]>>2&3)<<4
			o[l+64] = ql[l]>>4 | (qh[l]>>4&3)<<4
			o[l+96] = ql[l+32]>>4 | (qh[l]>>6&3)<<4
		}
	}
}

// q6KDotGo is the portable Q6_K kernel and the reference the assembly is
// tested against, bit for bit.
func q6KDotGo(row []byte, q []int8, xd []float32, nb int) float32 {
	var acc float32
	var u [256]uint8
	for b := 0; b < nb; b++ {
		blk := (*[210]byte)(row[b*210 : b*210+210])
		q6KCodes(blk, &u)
		d := F16ToF32(uint16(blk[208]) | uint16(blk[209])<<8)
		x := (*[256]int8)(q[b*256 : b*256+256])
		for j := 0; j < 8; j++ {
			var isum int32
			for h := 0; h < 2; h++ {
				var p, s int32
				for l := 32*j + 16*h; l < 32*j+16*h+16; l++ {
					p += int32(u[l]) * int32(x[l])
					s += int32(x[l])
				}
				isum += int32(int8(blk[192+2*j+h])) * (p - 32*s)
			}
			acc = kq6Step(acc, isum, d, xd[b*8+j])
		}
	}
	return acc
}
