//go:build amd64 && !purego

#include "textflag.h"

// func dotF32x4AVX512(m *float32, stride int, x *float32, n int, out *float32)
//
// out[r] = Σ_i m[r·stride+i]·x[i] for r = 0..3, i < n, with AVX-512 FMA:
// each 16-float load of x serves four rows, two sets of four 16-lane
// accumulators over 32 elements a step, then 16 at a time, then a masked
// step for the last n mod 16. Every row's arithmetic is the same whichever
// rows it is computed with (stride 0 computes one row four times).
TEXT ·dotF32x4AVX512(SB), NOSPLIT, $0-40
	MOVQ m+0(FP), SI
	MOVQ stride+8(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ x+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7

loop32:
	CMPQ CX, $32
	JLT loop16
	VMOVUPS (DI), Z8
	VMOVUPS 64(DI), Z9
	VFMADD231PS (SI), Z8, Z0
	VFMADD231PS (SI)(R8*1), Z8, Z1
	VFMADD231PS (SI)(R8*2), Z8, Z2
	VFMADD231PS (SI)(R9*1), Z8, Z3
	VFMADD231PS 64(SI), Z9, Z4
	VFMADD231PS 64(SI)(R8*1), Z9, Z5
	VFMADD231PS 64(SI)(R8*2), Z9, Z6
	VFMADD231PS 64(SI)(R9*1), Z9, Z7
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP loop32

loop16:
	CMPQ CX, $16
	JLT tail
	VMOVUPS (DI), Z8
	VFMADD231PS (SI), Z8, Z0
	VFMADD231PS (SI)(R8*1), Z8, Z1
	VFMADD231PS (SI)(R8*2), Z8, Z2
	VFMADD231PS (SI)(R9*1), Z8, Z3
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX

tail:
	TESTQ CX, CX
	JEQ reduce
	MOVL $1, AX
	SHLL CX, AX
	DECL AX
	KMOVW AX, K1
	VMOVUPS.Z (DI), K1, Z8
	VMOVUPS.Z (SI), K1, Z9
	VFMADD231PS Z9, Z8, Z0
	VMOVUPS.Z (SI)(R8*1), K1, Z9
	VFMADD231PS Z9, Z8, Z1
	VMOVUPS.Z (SI)(R8*2), K1, Z9
	VFMADD231PS Z9, Z8, Z2
	VMOVUPS.Z (SI)(R9*1), K1, Z9
	VFMADD231PS Z9, Z8, Z3

reduce:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	VEXTRACTF32X8 $1, Z0, Y4
	VEXTRACTF32X8 $1, Z1, Y5
	VEXTRACTF32X8 $1, Z2, Y6
	VEXTRACTF32X8 $1, Z3, Y7
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	VHADDPS Y1, Y0, Y0
	VHADDPS Y3, Y2, Y2
	VHADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVUPS X0, (DX)
	VZEROUPPER
	RET
