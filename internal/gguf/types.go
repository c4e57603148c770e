package gguf

import (
	"fmt"
	"strings"
)

// TensorType is a ggml tensor element type code.
type TensorType uint32

// Tensor types. Only those with traits below are supported; the others are
// named so errors can say what a file contains.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q8_0 TensorType = 8
	Q8_1 TensorType = 9
	Q2_K TensorType = 10
	Q3_K TensorType = 11
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14
	Q8_K TensorType = 15
	BF16 TensorType = 30
)

func (t TensorType) String() string {
	switch t {
	case 0:
		return "F32"
	case 1:
		return "F16"
	case 2:
		return "Q4_0"
	case 3:
		return "Q4_1"
	case 6:
		return "Q5_0"
	case 7:
		return "Q5_1"
	case 8:
		return "Q8_0"
	case 9:
		return "Q8_1"
	case 10:
		return "Q2_K"
	case 11:
		return "Q3_K"
	case 12:
		return "Q4_K"
	case 13:
		return "Q5_K"
	case 14:
		return "Q6_K"
	case 15:
		return "Q8_K"
	case 16:
		return "IQ2_XXS"
	case 17:
		return "IQ2_XS"
	case 18:
		return "IQ3_XXS"
	case 19:
		return "IQ1_S"
	case 20:
		return "IQ4_NL"
	case 21:
		return "IQ3_S"
	case 22:
		return "IQ2_S"
	case 23:
		return "IQ4_XS"
	case 24:
		return "I8"
	case 25:
		return "I16"
	case 26:
		return "I32"
	case 27:
		return "I64"
	case 28:
		return "F64"
	case 29:
		return "IQ1_M"
	case 30:
		return "BF16"
	case 34:
		return "TQ1_0"
	case 35:
		return "TQ2_0"
	case 39:
		return "MXFP4"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

type traits struct {
	blockSize  int // elements per block
	blockBytes int // bytes per block
}

// QK_K is the super-block size of the K-quants.
const qkK = 256

func (t TensorType) traits() traits {
	switch t {
	case F32:
		return traits{1, 4}
	case F16, BF16:
		return traits{1, 2}
	case Q8_0:
		return traits{32, 34}
	case Q4_0:
		return traits{32, 18}
	case Q4_K:
		return traits{qkK, 144}
	case Q6_K:
		return traits{qkK, 210}
	}
	return traits{}
}

// Supported reports whether this package can read tensors of type t.
func (t TensorType) Supported() bool { return t.traits().blockSize != 0 }

// BlockSize is the number of elements per block (1 for float types).
func (t TensorType) BlockSize() int { return t.traits().blockSize }

// RowBytes returns the encoded size of n elements (n a multiple of BlockSize).
func (t TensorType) RowBytes(n int) int {
	tr := t.traits()
	return n / tr.blockSize * tr.blockBytes
}

// SupportedTypes lists the supported tensor types.
func SupportedTypes() []TensorType { return []TensorType{F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K} }

func supportedList() string {
	var names []string
	for _, t := range SupportedTypes() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}
