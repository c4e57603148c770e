//go:build amd64 && !purego

#include "textflag.h"

// One input's block of a group of 16 rows (Q8Matrix's packed layout; the
// block's eight weight vectors in Z0-Z7 as w+128, the rows' scales as
// float32 in Z8):
// the 16 int32 sums of w·x start at the input's -128·Σx (the correction
// for the +128), and each VPDPBUSD adds, per row lane, four products of
// an unsigned weight byte by a signed byte of x broadcast to every lane.
// No term saturates (VPDPBUSD without S wraps, and |sum| < 2^21), so the
// sums are exact. Then S += float32(isum) * (dw * xd[b]), lane by lane,
// in q8DotGo's order. in is the offset of the input's q8In (32 bytes:
// q, d, c pointers, out) from DI; BX = 32·b, DX = 4·b.
#define Q8_INPUT(in, S) \
	MOVQ (in+0)(DI), R9; \
	MOVQ (in+8)(DI), R10; \
	MOVQ (in+16)(DI), R11; \
	ADDQ BX, R9; \
	VPBROADCASTD (R11)(DX*1), Z16; \
	VPDPBUSD.BCST 0(R9), Z0, Z16; \
	VPDPBUSD.BCST 4(R9), Z1, Z16; \
	VPDPBUSD.BCST 8(R9), Z2, Z16; \
	VPDPBUSD.BCST 12(R9), Z3, Z16; \
	VPDPBUSD.BCST 16(R9), Z4, Z16; \
	VPDPBUSD.BCST 20(R9), Z5, Z16; \
	VPDPBUSD.BCST 24(R9), Z6, Z16; \
	VPDPBUSD.BCST 28(R9), Z7, Z16; \
	VCVTDQ2PS Z16, Z16; \
	VMULPS.BCST (R10)(DX*1), Z8, Z17; \
	VMULPS Z17, Z16, Z16; \
	VADDPS Z16, S, S

#define Q8_STORE(in, S) \
	MOVQ (in+24)(DI), R9; \
	VMOVUPS S, (R9)(AX*1)

// func q8MulVNNI(w *byte, groups, nb int, ins *[8]q8In, n int)
//
// groups consecutive groups of 16 rows of a packed Q8_0 matrix (w at the
// first; per group nb blocks of 544 bytes: eight 64-byte vectors, vector
// k holding bytes 4k..4k+3 of the block of each of the 16 rows, +128 as
// unsigned, then the 16 rows' f16 scales, converted exactly by VCVTPH2PS)
// times n (1..8) quantized
// inputs: ins[i].out[16g+r] = the dot product of row r of group g with
// input i, bit for bit as q8DotGo computes it. ins[i].c holds the input's
// -128·Σq per block. Each block's weights are loaded once for all n
// inputs; no horizontal sums are needed, lane r is row r throughout.
TEXT ·q8MulVNNI(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ groups+8(FP), R12
	MOVQ ins+24(FP), DI
	MOVQ n+32(FP), R8
	XORQ AX, AX

gloop:
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	XORQ BX, BX
	XORQ DX, DX
	MOVQ nb+16(FP), CX

bloop:
	VMOVDQU64 0(SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VMOVDQU64 256(SI), Z4
	VMOVDQU64 320(SI), Z5
	VMOVDQU64 384(SI), Z6
	VMOVDQU64 448(SI), Z7
	VCVTPH2PS 512(SI), Z8
	Q8_INPUT(0, Z20)
	CMPQ R8, $1
	JEQ bnext
	Q8_INPUT(32, Z21)
	CMPQ R8, $2
	JEQ bnext
	Q8_INPUT(64, Z22)
	CMPQ R8, $3
	JEQ bnext
	Q8_INPUT(96, Z23)
	CMPQ R8, $4
	JEQ bnext
	Q8_INPUT(128, Z24)
	CMPQ R8, $5
	JEQ bnext
	Q8_INPUT(160, Z25)
	CMPQ R8, $6
	JEQ bnext
	Q8_INPUT(192, Z26)
	CMPQ R8, $7
	JEQ bnext
	Q8_INPUT(224, Z27)

bnext:
	ADDQ $544, SI
	ADDQ $32, BX
	ADDQ $4, DX
	DECQ CX
	JNZ bloop

	Q8_STORE(0, Z20)
	CMPQ R8, $1
	JEQ gnext
	Q8_STORE(32, Z21)
	CMPQ R8, $2
	JEQ gnext
	Q8_STORE(64, Z22)
	CMPQ R8, $3
	JEQ gnext
	Q8_STORE(96, Z23)
	CMPQ R8, $4
	JEQ gnext
	Q8_STORE(128, Z24)
	CMPQ R8, $5
	JEQ gnext
	Q8_STORE(160, Z25)
	CMPQ R8, $6
	JEQ gnext
	Q8_STORE(192, Z26)
	CMPQ R8, $7
	JEQ gnext
	Q8_STORE(224, Z27)

gnext:
	ADDQ $64, AX
	DECQ R12
	JNZ gloop
	VZEROUPPER
	RET

DATA q8bias<>+0(SB)/8, $0x8080808080808080
GLOBL q8bias<>(SB), RODATA|NOPTR, $8

// func q8NegSums(q *int8, nb int, c *int32)
//
// c[b] = -128 · the sum of the 32 values of block b of q (nb > 0): with
// u = q+128 (q XOR 0x80) VPSADBW sums unsigned bytes, and Σq = Σu - 4096.
TEXT ·q8NegSums(SB), NOSPLIT, $0-24
	MOVQ q+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ c+16(FP), DI
	VPBROADCASTQ q8bias<>+0(SB), Y3
	VPXOR Y4, Y4, Y4

sloop:
	VPXOR (SI), Y3, Y0
	VPSADBW Y4, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ X1, X0, X0
	VPSHUFD $0x4E, X0, X1
	VPADDQ X1, X0, X0
	MOVQ X0, AX
	MOVQ $4096, DX
	SUBQ AX, DX
	SHLQ $7, DX
	MOVL DX, (DI)
	ADDQ $32, SI
	ADDQ $4, DI
	DECQ CX
	JNZ sloop
	VZEROUPPER
	RET
