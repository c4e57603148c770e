package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// File is a parsed GGUF file whose bytes stay in memory (usually a shared
// read-only mapping from a Registry). A File is safe for concurrent use.
type File struct {
	*Header
	data  []byte // the whole file
	index map[string]int
	kv    map[string]int
	// release is called once by Close (nil for in-memory files).
	release func()
	// packs holds prepared forms of tensors shared by every File of one
	// mapping (Registry.Open); nil for Files parsed on their own.
	packs *packCache
}

// Parse reads a GGUF file held in b. The File refers to b; b must not change.
func Parse(b []byte) (*File, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, fmt.Errorf("%w: big-endian hosts", ErrUnsupported)
	}
	f := &File{Header: h, data: b, index: make(map[string]int, len(h.Tensors)), kv: make(map[string]int, len(h.KVs))}
	for i, t := range h.Tensors {
		if _, dup := f.index[t.Name]; dup {
			return nil, fmt.Errorf("%w: tensor %q appears twice", ErrFormat, t.Name)
		}
		f.index[t.Name] = i
	}
	for i, kv := range h.KVs {
		f.kv[kv.Key] = i
	}
	return f, nil
}

// Close releases this holder's reference to the mapping. The File and its
// tensors must not be used afterwards. Close is idempotent.
func (f *File) Close() error {
	if f.release != nil {
		f.release()
		f.release = nil
	}
	return nil
}

// Tensor is one tensor's info and its bytes in the file.
type Tensor struct {
	TensorInfo
	Data []byte
}

// Tensor returns the named tensor, or false if the file has none.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.index[name]
	if !ok {
		return nil, false
	}
	ti := f.Tensors[i]
	start := f.DataOffset + ti.Offset
	return &Tensor{TensorInfo: ti, Data: f.data[start : start+ti.Bytes() : start+ti.Bytes()]}, true
}

// Cols is the row length (Dims[0]); Rows is the product of the other dims.
func (t *Tensor) Cols() int { return int(t.Dims[0]) }

// Rows returns the number of rows.
func (t *Tensor) Rows() int { return int(t.Elements() / t.Dims[0]) }

// Row returns the encoded bytes of row r.
func (t *Tensor) Row(r int) []byte {
	n := t.Type.RowBytes(t.Cols())
	return t.Data[r*n : (r+1)*n : (r+1)*n]
}

// Float32s returns the data of an F32 tensor without copying.
func (t *Tensor) Float32s() []float32 {
	if t.Type != F32 {
		panic("gguf: Float32s on " + t.Type.String())
	}
	return bytesAsF32(t.Data)
}

// Decode returns the whole tensor as float32 (a copy, except for F32).
func (t *Tensor) Decode() []float32 {
	if t.Type == F32 {
		return t.Float32s()
	}
	out := make([]float32, t.Elements())
	Dequantize(t.Type, t.Data, out)
	return out
}

// Value returns the raw value of a metadata key.
func (f *File) Value(key string) (any, bool) {
	i, ok := f.kv[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

// String returns a string value; ok is false if absent or not a string.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Value(key)
	s, ok := v.(string)
	return s, ok
}

// Int returns an integer value of any integer type as int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Value(key)
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// Float returns a float (or integer) value as float64.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Value(key)
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	i, ok := f.Int(key)
	return float64(i), ok
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Value(key)
	b, ok := v.(bool)
	return b, ok
}

// Strings returns a string array.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Value(key)
	a, ok := v.(Array)
	if !ok {
		return nil, false
	}
	s, ok := a.Values.([]string)
	return s, ok
}

// Float32s returns a float32 array.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Value(key)
	a, ok := v.(Array)
	if !ok {
		return nil, false
	}
	s, ok := a.Values.([]float32)
	return s, ok
}

// Int32s returns an integer array of any integer element type as int32.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Value(key)
	a, ok := v.(Array)
	if !ok {
		return nil, false
	}
	switch x := a.Values.(type) {
	case []int32:
		return x, true
	case []uint32:
		out := make([]int32, len(x))
		for i, e := range x {
			out[i] = int32(e)
		}
		return out, true
	case []uint8:
		out := make([]int32, len(x))
		for i, e := range x {
			out[i] = int32(e)
		}
		return out, true
	case []int8:
		out := make([]int32, len(x))
		for i, e := range x {
			out[i] = int32(e)
		}
		return out, true
	}
	return nil, false
}
