//go:build amd64 && !purego

#include "textflag.h"

// func q8Dot2x4AVX2(row *byte, stride int, xs *[4]*int8, xd4 *float32, nb int, out *[8]float32)
//
// Two Q8_0 rows (row and row+stride bytes, nb blocks each) by four
// quantized inputs: out[4j+i] += the dot product of row j with input i,
// bit for bit as q8DotGo computes it. Each block of a row is loaded and
// made unsigned once for four inputs, and each input block once for two
// rows. xd4 holds the four inputs' scales interleaved, block by block
// (xd4[4b+i] = xds[i][b]). The eight int32 block sums are formed with llama.cpp's sign trick
// (as in q8DotAVX2) and reduced together (VPHADDD); the float part runs on
// the eight (row, input) pairs in lanes, in q8DotGo's order per lane:
// s += float32(isum) * (dw * xd[b]), with s kept in out.
TEXT ·q8Dot2x4AVX2(SB), NOSPLIT, $0-48
	MOVQ row+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ xs+16(FP), DX
	MOVQ 0(DX), AX
	MOVQ 8(DX), BX
	MOVQ 16(DX), R10
	MOVQ 24(DX), R11
	MOVQ xd4+24(FP), DI
	MOVQ nb+32(FP), CX
	MOVQ out+40(FP), DX
	MOVL $0x00010001, R13
	VMOVD R13, X15
	VPBROADCASTD X15, Y15

loop:
	VMOVDQU (AX), Y8
	VMOVDQU (BX), Y9
	VMOVDQU (R10), Y10
	VMOVDQU (R11), Y11

	VMOVDQU 2(SI), Y12
	VPABSB Y12, Y13
	VPSIGNB Y12, Y8, Y14
	VPMADDUBSW Y14, Y13, Y0
	VPMADDWD Y15, Y0, Y0
	VPSIGNB Y12, Y9, Y14
	VPMADDUBSW Y14, Y13, Y1
	VPMADDWD Y15, Y1, Y1
	VPSIGNB Y12, Y10, Y14
	VPMADDUBSW Y14, Y13, Y2
	VPMADDWD Y15, Y2, Y2
	VPSIGNB Y12, Y11, Y14
	VPMADDUBSW Y14, Y13, Y3
	VPMADDWD Y15, Y3, Y3

	VMOVDQU 2(SI)(R8*1), Y12
	VPABSB Y12, Y13
	VPSIGNB Y12, Y8, Y14
	VPMADDUBSW Y14, Y13, Y4
	VPMADDWD Y15, Y4, Y4
	VPSIGNB Y12, Y9, Y14
	VPMADDUBSW Y14, Y13, Y5
	VPMADDWD Y15, Y5, Y5
	VPSIGNB Y12, Y10, Y14
	VPMADDUBSW Y14, Y13, Y6
	VPMADDWD Y15, Y6, Y6
	VPSIGNB Y12, Y11, Y14
	VPMADDUBSW Y14, Y13, Y7
	VPMADDWD Y15, Y7, Y7

	// Eight vectors of eight int32 partial sums to one vector of eight
	// sums, lane k for pair k.
	VPHADDD Y1, Y0, Y0
	VPHADDD Y3, Y2, Y2
	VPHADDD Y5, Y4, Y4
	VPHADDD Y7, Y6, Y6
	VPHADDD Y2, Y0, Y0
	VPHADDD Y6, Y4, Y4
	VPERM2I128 $0x20, Y4, Y0, Y1
	VPERM2I128 $0x31, Y4, Y0, Y2
	VPADDD Y2, Y1, Y1
	VCVTDQ2PS Y1, Y1

	// dw of row 0 in lanes 0-3, of row 1 in lanes 4-7; xd of input i in
	// lanes i and 4+i.
	MOVWLZX (SI), R13
	VMOVD R13, X2
	VCVTPH2PS X2, X2
	VBROADCASTSS X2, Y2
	MOVWLZX (SI)(R8*1), R13
	VMOVD R13, X3
	VCVTPH2PS X3, X3
	VBROADCASTSS X3, Y3
	VBLENDPS $0xF0, Y3, Y2, Y2
	VBROADCASTF128 (DI), Y3
	VMULPS Y3, Y2, Y2
	VMULPS Y2, Y1, Y1
	VADDPS (DX), Y1, Y1
	VMOVUPS Y1, (DX)

	ADDQ $34, SI
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $16, DI
	DECQ CX
	JNZ loop

	VZEROUPPER
	RET

DATA q8consts<>+0(SB)/4, $0x7fffffff // |x| mask
DATA q8consts<>+4(SB)/4, $127.0
DATA q8consts<>+8(SB)/4, $1.0
DATA q8consts<>+12(SB)/4, $-127
DATA q8consts<>+16(SB)/4, $127
GLOBL q8consts<>(SB), RODATA|NOPTR, $20

// func quantizeQ8AVX512(x *float32, q *int8, d *float32, nb int)
//
// quantizeQ8Go in AVX-512, bit for bit for finite inputs: per block of 32
// d = max|x|/127, q = round-half-even(x·(1/d)) clamped to [-127, 127]
// (VCVTPS2DQ rounds half to even in the default rounding mode), and a
// zero block for d = 0. nb > 0.
TEXT ·quantizeQ8AVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), DX
	MOVQ nb+24(FP), CX
	VPBROADCASTD q8consts<>+0(SB), Z8
	VMOVSS q8consts<>+4(SB), X9
	VMOVSS q8consts<>+8(SB), X10
	VPBROADCASTD q8consts<>+12(SB), Z11
	VPBROADCASTD q8consts<>+16(SB), Z12
	VXORPS X13, X13, X13

qloop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VPANDD Z8, Z0, Z2
	VPANDD Z8, Z1, Z3
	VMAXPS Z3, Z2, Z2
	VEXTRACTF32X8 $1, Z2, Y3
	VMAXPS Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VMAXPS X3, X2, X2
	VPERMILPS $0x4E, X2, X3
	VMAXPS X3, X2, X2
	VPERMILPS $0xB1, X2, X3
	VMAXPS X3, X2, X2
	VDIVSS X9, X2, X2
	VMOVSS X2, (DX)
	VUCOMISS X13, X2
	JEQ qzero
	VDIVSS X2, X10, X5
	VBROADCASTSS X5, Z5
	VMULPS Z5, Z0, Z0
	VMULPS Z5, Z1, Z1
	VCVTPS2DQ Z0, Z0
	VCVTPS2DQ Z1, Z1
	VPMAXSD Z11, Z0, Z0
	VPMAXSD Z11, Z1, Z1
	VPMINSD Z12, Z0, Z0
	VPMINSD Z12, Z1, Z1
	VPMOVSDB Z0, X0
	VPMOVSDB Z1, X1
	VMOVDQU X0, (DI)
	VMOVDQU X1, 16(DI)
	JMP qnext

qzero:
	VMOVDQU Y13, (DI)

qnext:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ qloop
	VZEROUPPER
	RET
