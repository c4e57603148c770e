//go:build amd64 && !purego

#include "textflag.h"

DATA argmaxinf<>+0(SB)/4, $0xff800000 // -Inf
GLOBL argmaxinf<>(SB), RODATA|NOPTR, $4

// func maxAVX512(x *float32, blocks int) float32
//
// The largest non-NaN value of blocks·16 floats (-Inf if none): VMAXPS
// returns its second source operand when either is NaN, and the running
// maximum is that operand, so NaNs are skipped.
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ blocks+8(FP), CX
	VBROADCASTSS argmaxinf<>+0(SB), Z0

mloop:
	VMOVUPS (SI), Z2
	VMAXPS Z0, Z2, Z0
	ADDQ $64, SI
	DECQ CX
	JNZ mloop
	VEXTRACTF32X8 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	VMOVSS X0, ret+16(FP)
	RET

// func firstEqualAVX512(x *float32, blocks int, m float32) int
//
// The first index of blocks·16 floats whose value equals m, or -1.
TEXT ·firstEqualAVX512(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ blocks+8(FP), CX
	VBROADCASTSS m+16(FP), Z1
	XORQ DX, DX

floop:
	VCMPPS $0, (SI), Z1, K1
	KMOVW K1, AX
	TESTL AX, AX
	JNZ found
	ADDQ $64, SI
	ADDQ $16, DX
	DECQ CX
	JNZ floop
	VZEROUPPER
	MOVQ $-1, ret+24(FP)
	RET

found:
	BSFL AX, AX
	ADDQ AX, DX
	VZEROUPPER
	MOVQ DX, ret+24(FP)
	RET
