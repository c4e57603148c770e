//go:build amd64 && !purego

#include "textflag.h"

DATA siluconsts<>+0(SB)/4, $0x80000000  // sign
DATA siluconsts<>+4(SB)/4, $0x42b00000  // expMax 88
DATA siluconsts<>+8(SB)/4, $0xc2ae0000  // expMin -87
DATA siluconsts<>+12(SB)/4, $0x3fb8aa3b // log2 e
DATA siluconsts<>+16(SB)/4, $0x3f318000 // C1
DATA siluconsts<>+20(SB)/4, $0xb95e8083 // C2
DATA siluconsts<>+24(SB)/4, $0x39506967 // P0
DATA siluconsts<>+28(SB)/4, $0x3ab743ce // P1
DATA siluconsts<>+32(SB)/4, $0x3c088908 // P2
DATA siluconsts<>+36(SB)/4, $0x3d2aa9c1 // P3
DATA siluconsts<>+40(SB)/4, $0x3e2aaaaa // P4
DATA siluconsts<>+44(SB)/4, $0x3f000000 // P5
DATA siluconsts<>+48(SB)/4, $0x3f800000 // 1
DATA siluconsts<>+52(SB)/4, $127
GLOBL siluconsts<>(SB), RODATA|NOPTR, $56

// EXP_CONSTS loads the sign mask and expF32's constants into Z16-Z29.
#define EXP_CONSTS \
	VPBROADCASTD siluconsts<>+0(SB), Z16; \
	VBROADCASTSS siluconsts<>+4(SB), Z17; \
	VBROADCASTSS siluconsts<>+8(SB), Z18; \
	VBROADCASTSS siluconsts<>+12(SB), Z19; \
	VBROADCASTSS siluconsts<>+16(SB), Z20; \
	VBROADCASTSS siluconsts<>+20(SB), Z21; \
	VBROADCASTSS siluconsts<>+24(SB), Z22; \
	VBROADCASTSS siluconsts<>+28(SB), Z23; \
	VBROADCASTSS siluconsts<>+32(SB), Z24; \
	VBROADCASTSS siluconsts<>+36(SB), Z25; \
	VBROADCASTSS siluconsts<>+40(SB), Z26; \
	VBROADCASTSS siluconsts<>+44(SB), Z27; \
	VBROADCASTSS siluconsts<>+48(SB), Z28; \
	VPBROADCASTD siluconsts<>+52(SB), Z29

// EXP_Z1 sets Z5 = expF32(Z1) (Z1 is clobbered; Z2-Z6 are scratch),
// with the constants in Z17-Z29 as the kernels load them.
#define EXP_Z1 \
	VMINPS Z17, Z1, Z1; \
	VMAXPS Z18, Z1, Z1; \
	VMULPS Z19, Z1, Z2; \
	VCVTPS2DQ Z2, Z3; \
	VCVTDQ2PS Z3, Z2; \
	VMULPS Z20, Z2, Z4; \
	VSUBPS Z4, Z1, Z1; \
	VMULPS Z21, Z2, Z4; \
	VSUBPS Z4, Z1, Z1; \
	VMULPS Z22, Z1, Z5; \
	VADDPS Z23, Z5, Z5; \
	VMULPS Z1, Z5, Z5; \
	VADDPS Z24, Z5, Z5; \
	VMULPS Z1, Z5, Z5; \
	VADDPS Z25, Z5, Z5; \
	VMULPS Z1, Z5, Z5; \
	VADDPS Z26, Z5, Z5; \
	VMULPS Z1, Z5, Z5; \
	VADDPS Z27, Z5, Z5; \
	VMULPS Z1, Z1, Z6; \
	VMULPS Z6, Z5, Z5; \
	VADDPS Z1, Z5, Z5; \
	VADDPS Z28, Z5, Z5; \
	VPADDD Z29, Z3, Z3; \
	VPSLLD $23, Z3, Z3; \
	VMULPS Z3, Z5, Z5

// func siluMulAVX512(gp, u *float32, blocks int)
//
// siluMulOne on blocks·16 elements, bit for bit: each step of expF32 is
// one IEEE float32 operation here too (no FMA), n is rounded half to
// even (VCVTPS2DQ in the default rounding mode) and 2^n is built in the
// exponent bits.
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-24
	MOVQ gp+0(FP), SI
	MOVQ u+8(FP), DI
	MOVQ blocks+16(FP), CX
	EXP_CONSTS

loop:
	VMOVUPS (SI), Z0
	VXORPS Z16, Z0, Z1   // x = -g
	EXP_Z1
	VADDPS Z28, Z5, Z5   // 1 + e^-g
	VDIVPS Z5, Z0, Z0
	VMULPS (DI), Z0, Z0
	VMOVUPS Z0, (SI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET

// func expShiftAVX512(x *float32, m float32, blocks int)
//
// x[t] = expF32(x[t] - m) on blocks·16 elements, bit for bit.
TEXT ·expShiftAVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	VBROADCASTSS m+8(FP), Z7
	MOVQ blocks+16(FP), CX
	EXP_CONSTS

eloop:
	VMOVUPS (SI), Z1
	VSUBPS Z7, Z1, Z1
	EXP_Z1
	VMOVUPS Z5, (SI)
	ADDQ $64, SI
	DECQ CX
	JNZ eloop
	VZEROUPPER
	RET
