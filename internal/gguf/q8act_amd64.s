//go:build amd64 && !purego

#include "textflag.h"

// func q8DotAVX2(row *byte, x *int8, xd *float32, nb int) float32
//
// q8DotGo in AVX2, bit for bit. For each of nb Q8_0 blocks (34 bytes: f16
// scale, 32 int8 weights) and 32-element int8 block of x the int32 sum of
// the products is formed as llama.cpp does: VPMADDUBSW multiplies unsigned
// by signed bytes, so |w| is multiplied by x with w's sign applied
// (VPSIGNB); x must not hold -128. Pair sums are at most 2·128·127 =
// 32512, so the int16 saturation never happens. The float part (sum +=
// float32(isum) * (dw * xd[b])) is scalar, in q8DotGo's order. F16C
// (VCVTPH2PS) comes with AVX2 on every x86 CPU.
TEXT ·q8DotAVX2(SB), NOSPLIT, $0-36
	MOVQ row+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xd+16(FP), BX
	MOVQ nb+24(FP), CX
	MOVL $0x00010001, AX
	VMOVD AX, X7
	VPBROADCASTD X7, Y7
	VXORPS X6, X6, X6

loop:
	TESTQ CX, CX
	JEQ done
	VMOVDQU 2(SI), Y0
	VMOVDQU (DI), Y1
	VPABSB Y0, Y2
	VPSIGNB Y0, Y1, Y3
	VPMADDUBSW Y3, Y2, Y4
	VPMADDWD Y7, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4E, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xB1, X4, X5
	VPADDD X5, X4, X4
	VCVTDQ2PS X4, X4
	MOVWLZX (SI), AX
	VMOVD AX, X8
	VCVTPH2PS X8, X8
	VMULSS (BX), X8, X8
	VMULSS X8, X4, X4
	VADDSS X4, X6, X6
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, BX
	DECQ CX
	JMP loop

done:
	VZEROUPPER
	VMOVSS X6, ret+32(FP)
	RET
