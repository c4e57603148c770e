package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantize encodes src (a multiple of t's block size) as type t with simple
// round-to-nearest reference quantisers. They are meant for writing test and
// demo models, not for matching llama.cpp's error-minimising K-quant search.
func Quantize(t TensorType, src []float32) ([]byte, error) {
	if !t.Supported() {
		return nil, fmt.Errorf("%w: cannot quantise to %s", ErrUnsupported, t)
	}
	if len(src)%t.BlockSize() != 0 {
		return nil, fmt.Errorf("quantise to %s: %d elements is not a multiple of %d", t, len(src), t.BlockSize())
	}
	out := make([]byte, t.RowBytes(len(src)))
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(out[2*i:], F32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(out[2*i:], F32ToBF16(v))
		}
	case Q8_0:
		for b := 0; b < len(src)/32; b++ {
			x := src[b*32 : b*32+32]
			blk := out[b*34 : b*34+34]
			amax := absMax(x)
			d := amax / 127
			binary.LittleEndian.PutUint16(blk, F32ToF16(d))
			id := float32(0)
			if d != 0 {
				id = 1 / d
			}
			for j, v := range x {
				blk[2+j] = byte(int8(roundClamp(v*id, -127, 127)))
			}
		}
	case Q4_0:
		for b := 0; b < len(src)/32; b++ {
			x := src[b*32 : b*32+32]
			blk := out[b*18 : b*18+18]
			var amax, mx float32
			for _, v := range x {
				if a := float32(math.Abs(float64(v))); a > amax {
					amax, mx = a, v
				}
			}
			d := mx / -8
			binary.LittleEndian.PutUint16(blk, F32ToF16(d))
			id := float32(0)
			if d != 0 {
				id = 1 / d
			}
			for j := 0; j < 16; j++ {
				lo := roundClamp(x[j]*id+8, 0, 15)
				hi := roundClamp(x[j+16]*id+8, 0, 15)
				blk[2+j] = byte(lo) | byte(hi)<<4
			}
		}
	case Q4_K:
		for b := 0; b < len(src)/qkK; b++ {
			quantQ4K(src[b*qkK:(b+1)*qkK], out[b*144:(b+1)*144])
		}
	case Q6_K:
		for b := 0; b < len(src)/qkK; b++ {
			quantQ6K(src[b*qkK:(b+1)*qkK], out[b*210:(b+1)*210])
		}
	}
	return out, nil
}

func absMax(x []float32) float32 {
	var m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	return m
}

func roundClamp(v float32, lo, hi int) int {
	r := int(math.Round(float64(v)))
	return max(lo, min(hi, r))
}

func quantQ4K(x []float32, blk []byte) {
	// Per sub-block of 32: x ≈ scale*q - min with q in 0..15, scale ≥ 0, min ≥ 0.
	var scales, mins [8]float32
	for s := 0; s < 8; s++ {
		sub := x[32*s : 32*s+32]
		lo, hi := sub[0], sub[0]
		for _, v := range sub {
			lo, hi = min(lo, v), max(hi, v)
		}
		lo = min(lo, 0)
		mins[s] = -lo
		scales[s] = (hi - lo) / 15
	}
	maxScale, maxMin := float32(0), float32(0)
	for s := 0; s < 8; s++ {
		maxScale, maxMin = max(maxScale, scales[s]), max(maxMin, mins[s])
	}
	d, dmin := maxScale/63, maxMin/63
	binary.LittleEndian.PutUint16(blk, F32ToF16(d))
	binary.LittleEndian.PutUint16(blk[2:], F32ToF16(dmin))
	d, dmin = F16ToF32(F32ToF16(d)), F16ToF32(F32ToF16(dmin))
	var sc, mn [8]uint8
	for s := 0; s < 8; s++ {
		if d > 0 {
			sc[s] = uint8(roundClamp(scales[s]/d, 0, 63))
		}
		if dmin > 0 {
			mn[s] = uint8(roundClamp(mins[s]/dmin, 0, 63))
		}
	}
	packed := blk[4:16]
	for j := 0; j < 4; j++ {
		packed[j] = sc[j] | (sc[j+4]>>4)<<6
		packed[j+4] = mn[j] | (mn[j+4]>>4)<<6
		packed[j+8] = sc[j+4]&0xf | (mn[j+4]&0xf)<<4
	}
	q := blk[16:144]
	for j := 0; j < 4; j++ {
		for h := 0; h < 2; h++ {
			s := 2*j + h
			scale := d * float32(sc[s])
			m := dmin * float32(mn[s])
			for l := 0; l < 32; l++ {
				v := 0
				if scale > 0 {
					v = roundClamp((x[32*s+l]+m)/scale, 0, 15)
				}
				q[32*j+l] |= byte(v) << (4 * h)
			}
		}
	}
}

func quantQ6K(x []float32, blk []byte) {
	// 16 sub-blocks of 16: x ≈ d*sc*q with q in -32..31, sc int8.
	var subScale [16]float32
	var amaxAll float32
	for s := 0; s < 16; s++ {
		subScale[s] = absMax(x[16*s:16*s+16]) / 31
		amaxAll = max(amaxAll, subScale[s])
	}
	d := amaxAll / 127
	binary.LittleEndian.PutUint16(blk[208:], F32ToF16(d))
	d = F16ToF32(F32ToF16(d))
	var sc [16]int8
	for s := 0; s < 16; s++ {
		if d > 0 {
			sc[s] = int8(roundClamp(subScale[s]/d, -128, 127))
		}
		blk[192+s] = byte(sc[s])
	}
	var q [qkK]int
	for i := range q {
		scale := d * float32(sc[i/16])
		if scale != 0 {
			q[i] = roundClamp(x[i]/scale, -32, 31)
		}
	}
	for n := 0; n < 2; n++ {
		ql := blk[64*n : 64*n+64]
		qh := blk[128+32*n : 128+32*n+32]
		qq := q[128*n : 128*n+128]
		for l := 0; l < 32; l++ {
			q1, q2, q3, q4 := qq[l]+32, qq[l+32]+32, qq[l+64]+32, qq[l+96]+32
			ql[l] = byte(q1&0xf) | byte(q3&0xf)<<4
			ql[l+32] = byte(q2&0xf) | byte(q4&0xf)<<4
			qh[l] = byte(q1>>4) | byte(q2>>4)<<2 | byte(q3>>4)<<4 | byte(q4>>4)<<6
		}
	}
}
