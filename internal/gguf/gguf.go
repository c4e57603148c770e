// Package gguf reads (and, for tests and tools, writes) GGUF model files: the
// header, the metadata key/value pairs, the tensor table and the tensor data,
// which is memory-mapped read-only and shared between every holder of the
// same file through a Registry. It also owns the tensor element types this
// project supports (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K): their block
// layouts, dequantisation and dot-product kernels.
//
// gguf knows nothing about model architectures or tokenizers. It imports
// only the standard library, gonum (the portable F32 dot product) and
// golang.org/x/sys/cpu, and must not import any inferbox package.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// ErrUnsupported is wrapped by errors for files that are well formed but use
// something this package does not implement (a tensor type, a version).
var ErrUnsupported = errors.New("unsupported")

// ErrFormat is wrapped by errors for malformed files.
var ErrFormat = errors.New("malformed gguf")

// ValueType is a metadata value's type code.
type ValueType uint32

// Metadata value type codes.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// fixedSize is the encoded size of a scalar value type, 0 for string/array.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// KV is one metadata pair. Value holds a Go value of the matching type:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64, float64, or an Array.
type KV struct {
	Key   string
	Type  ValueType
	Value any
}

// Array is a metadata array. Values is a typed slice ([]string, []float32,
// []int32, []uint32, []uint8, ...) for scalar and string elements, and
// []Array for nested arrays.
type Array struct {
	Elem   ValueType
	Values any
}

// Len returns the number of elements.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// TensorInfo describes one tensor. Dims[0] is the contiguous dimension: a
// matrix with Dims [in, out] has out rows of in elements.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64 // relative to the start of the data section
}

// Elements returns the number of elements.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Bytes returns the tensor's size in the file.
func (t TensorInfo) Bytes() uint64 {
	tr := t.Type.traits()
	return t.Elements() / uint64(tr.blockSize) * uint64(tr.blockBytes)
}

// Header is everything before the tensor data.
type Header struct {
	Version    uint32
	KVs        []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64 // absolute offset of the data section
}

// Limits bound what a header may ask for, so hostile files cannot make the
// parser allocate without bound. Every count is also checked against the
// bytes actually present.
const (
	maxStringLen = 1 << 24 // 16 MiB for one string (chat templates are a few KB)
	maxDims      = 4
	maxNameLen   = 1 << 16
	maxNesting   = 4
)

type reader struct {
	b   []byte
	off int
}

func (r *reader) errf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrFormat, r.off, fmt.Sprintf(format, args...))
}

func (r *reader) need(n uint64) error {
	if n > uint64(len(r.b)-r.off) {
		return r.errf("need %d bytes, %d left", n, len(r.b)-r.off)
	}
	return nil
}

func (r *reader) u8() (uint8, error) {
	if err := r.need(1); err != nil {
		return 0, err
	}
	v := r.b[r.off]
	r.off++
	return v, nil
}

func (r *reader) u16() (uint16, error) {
	if err := r.need(2); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v, nil
}

func (r *reader) u32() (uint32, error) {
	if err := r.need(4); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *reader) u64() (uint64, error) {
	if err := r.need(8); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, nil
}

// count reads a v2/v3 count (u64) and checks that at least minEach bytes per
// element remain, which bounds every allocation by the input size.
func (r *reader) count(what string, minEach uint64) (int, error) {
	n, err := r.u64()
	if err != nil {
		return 0, err
	}
	left := uint64(len(r.b) - r.off)
	if minEach > 0 && n > left/minEach {
		return 0, r.errf("%s count %d exceeds what the remaining %d bytes can hold", what, n, left)
	}
	if n > math.MaxInt32 {
		return 0, r.errf("%s count %d too large", what, n)
	}
	return int(n), nil
}

func (r *reader) str(limit uint64) (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", r.errf("string length %d exceeds limit %d", n, limit)
	}
	if err := r.need(n); err != nil {
		return "", err
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s, nil
}

func (r *reader) scalar(t ValueType) (any, error) {
	switch t {
	case TypeUint8:
		return r.u8()
	case TypeInt8:
		v, err := r.u8()
		return int8(v), err
	case TypeUint16:
		return r.u16()
	case TypeInt16:
		v, err := r.u16()
		return int16(v), err
	case TypeUint32:
		return r.u32()
	case TypeInt32:
		v, err := r.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := r.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := r.u8()
		if err == nil && v > 1 {
			return nil, r.errf("bool value %d", v)
		}
		return v == 1, err
	case TypeString:
		return r.str(maxStringLen)
	case TypeUint64:
		return r.u64()
	case TypeInt64:
		v, err := r.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := r.u64()
		return math.Float64frombits(v), err
	}
	return nil, r.errf("unknown value type %d", t)
}

func (r *reader) value(t ValueType, depth int) (any, error) {
	if t != TypeArray {
		return r.scalar(t)
	}
	if depth >= maxNesting {
		return nil, r.errf("arrays nested deeper than %d", maxNesting)
	}
	et, err := r.u32()
	if err != nil {
		return nil, err
	}
	elem := ValueType(et)
	minEach := uint64(elem.fixedSize())
	switch elem {
	case TypeString:
		minEach = 8
	case TypeArray:
		minEach = 12
	}
	if minEach == 0 {
		return nil, r.errf("unknown array element type %d", et)
	}
	n, err := r.count("array", minEach)
	if err != nil {
		return nil, err
	}
	return r.array(elem, n, depth)
}

func readSlice[T any](r *reader, n int, t ValueType) ([]T, error) {
	out := make([]T, n)
	for i := range out {
		v, err := r.scalar(t)
		if err != nil {
			return nil, err
		}
		out[i] = v.(T)
	}
	return out, nil
}

func (r *reader) array(elem ValueType, n, depth int) (Array, error) {
	a := Array{Elem: elem}
	var err error
	switch elem {
	case TypeUint8:
		a.Values, err = readSlice[uint8](r, n, elem)
	case TypeInt8:
		a.Values, err = readSlice[int8](r, n, elem)
	case TypeUint16:
		a.Values, err = readSlice[uint16](r, n, elem)
	case TypeInt16:
		a.Values, err = readSlice[int16](r, n, elem)
	case TypeUint32:
		a.Values, err = readSlice[uint32](r, n, elem)
	case TypeInt32:
		a.Values, err = readSlice[int32](r, n, elem)
	case TypeFloat32:
		a.Values, err = readSlice[float32](r, n, elem)
	case TypeBool:
		a.Values, err = readSlice[bool](r, n, elem)
	case TypeString:
		a.Values, err = readSlice[string](r, n, elem)
	case TypeUint64:
		a.Values, err = readSlice[uint64](r, n, elem)
	case TypeInt64:
		a.Values, err = readSlice[int64](r, n, elem)
	case TypeFloat64:
		a.Values, err = readSlice[float64](r, n, elem)
	case TypeArray:
		vs := make([]Array, n)
		for i := range vs {
			v, e := r.value(TypeArray, depth+1)
			if e != nil {
				return a, e
			}
			vs[i] = v.(Array)
		}
		a.Values = vs
	}
	return a, err
}

// ParseHeader parses the header, metadata and tensor table of a GGUF file
// held in b (usually a memory mapping). It checks that every tensor lies
// inside b, and refuses tensor types this package does not support, naming
// the type.
func ParseHeader(b []byte) (*Header, error) {
	r := &reader{b: b}
	if err := r.need(4); err != nil {
		return nil, err
	}
	if string(b[:4]) != Magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrFormat, b[:4])
	}
	r.off = 4
	h := &Header{Alignment: DefaultAlignment}
	var err error
	if h.Version, err = r.u32(); err != nil {
		return nil, err
	}
	if h.Version != 2 && h.Version != 3 {
		return nil, fmt.Errorf("%w: gguf version %d (only 2 and 3 are read)", ErrUnsupported, h.Version)
	}
	// A tensor info takes at least 8+4+4+8 bytes, a KV at least 8+4+1.
	nt, err := r.u64()
	if err != nil {
		return nil, err
	}
	nkv, err := r.u64()
	if err != nil {
		return nil, err
	}
	left := uint64(len(b) - r.off)
	if nt > left/24 || nkv > left/13 {
		return nil, r.errf("%d tensors and %d metadata pairs cannot fit in %d bytes", nt, nkv, left)
	}
	h.KVs = make([]KV, 0, nkv)
	for i := uint64(0); i < nkv; i++ {
		key, err := r.str(maxNameLen)
		if err != nil {
			return nil, err
		}
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		v, err := r.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		h.KVs = append(h.KVs, KV{Key: key, Type: ValueType(t), Value: v})
		if key == "general.alignment" {
			a, ok := v.(uint32)
			if !ok || a == 0 || a%8 != 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("%w: general.alignment %v must be a u32 power of two, multiple of 8", ErrFormat, v)
			}
			h.Alignment = uint64(a)
		}
	}
	h.Tensors = make([]TensorInfo, 0, nt)
	for i := uint64(0); i < nt; i++ {
		ti, err := r.tensorInfo()
		if err != nil {
			return nil, err
		}
		h.Tensors = append(h.Tensors, ti)
	}
	h.DataOffset = alignUp(uint64(r.off), h.Alignment)
	if h.DataOffset > uint64(len(b)) {
		if len(h.Tensors) > 0 {
			return nil, fmt.Errorf("%w: data section starts at %d, past the end (%d bytes)", ErrFormat, h.DataOffset, len(b))
		}
		h.DataOffset = uint64(len(b))
	}
	dataLen := uint64(len(b)) - h.DataOffset
	for _, t := range h.Tensors {
		if t.Offset%h.Alignment != 0 {
			return nil, fmt.Errorf("%w: tensor %q offset %d is not aligned to %d", ErrFormat, t.Name, t.Offset, h.Alignment)
		}
		if t.Offset > dataLen || t.Bytes() > dataLen-t.Offset {
			return nil, fmt.Errorf("%w: tensor %q (%d bytes at %d) extends past the end of the data (%d bytes)", ErrFormat, t.Name, t.Bytes(), t.Offset, dataLen)
		}
	}
	return h, nil
}

func (r *reader) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = r.str(maxNameLen); err != nil {
		return t, err
	}
	nd, err := r.u32()
	if err != nil {
		return t, err
	}
	if nd == 0 || nd > maxDims {
		return t, r.errf("tensor %q has %d dimensions (1..%d allowed)", t.Name, nd, maxDims)
	}
	t.Dims = make([]uint64, nd)
	n := uint64(1)
	for i := range t.Dims {
		if t.Dims[i], err = r.u64(); err != nil {
			return t, err
		}
		d := t.Dims[i]
		if d == 0 || d > 1<<40 || n > (1<<50)/d {
			return t, r.errf("tensor %q has an impossible shape %v", t.Name, t.Dims[:i+1])
		}
		n *= d
	}
	typ, err := r.u32()
	if err != nil {
		return t, err
	}
	t.Type = TensorType(typ)
	if !t.Type.Supported() {
		return t, fmt.Errorf("%w: tensor %q has type %s; supported types are %s", ErrUnsupported, t.Name, t.Type, supportedList())
	}
	if bs := uint64(t.Type.traits().blockSize); t.Dims[0]%bs != 0 {
		return t, r.errf("tensor %q: row length %d is not a multiple of the %s block size %d", t.Name, t.Dims[0], t.Type, bs)
	}
	if t.Offset, err = r.u64(); err != nil {
		return t, err
	}
	return t, nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }
