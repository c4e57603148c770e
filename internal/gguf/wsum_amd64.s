//go:build amd64 && !purego

#include "textflag.h"

// func weightedSum64AVX512(out *float32, m *float32, stride int, w *float32, rows int, mask uint64)
//
// out[j] = Σ_r w[r]·m[r·stride+j] for the columns j < 64 whose bit is set
// in mask (16 bits for each of four 16-lane accumulators); the others are
// neither read nor written. rows > 0.
TEXT ·weightedSum64AVX512(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ m+8(FP), SI
	MOVQ stride+16(FP), R8
	SHLQ $2, R8
	MOVQ w+24(FP), DX
	MOVQ rows+32(FP), CX
	MOVQ mask+40(FP), AX
	KMOVW AX, K1
	SHRQ $16, AX
	KMOVW AX, K2
	SHRQ $16, AX
	KMOVW AX, K3
	SHRQ $16, AX
	KMOVW AX, K4
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

loop:
	VBROADCASTSS (DX), Z8
	VMOVUPS.Z (SI), K1, Z4
	VMOVUPS.Z 64(SI), K2, Z5
	VMOVUPS.Z 128(SI), K3, Z6
	VMOVUPS.Z 192(SI), K4, Z7
	VFMADD231PS Z4, Z8, Z0
	VFMADD231PS Z5, Z8, Z1
	VFMADD231PS Z6, Z8, Z2
	VFMADD231PS Z7, Z8, Z3
	ADDQ R8, SI
	ADDQ $4, DX
	DECQ CX
	JNZ loop

	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	VMOVUPS Z2, K3, 128(DI)
	VMOVUPS Z3, K4, 192(DI)
	VZEROUPPER
	RET
