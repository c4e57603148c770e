package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer builds a GGUF v3 file in memory and writes it out. It exists for
// tests and tools that make small models; it keeps everything in memory.
type Writer struct {
	// Alignment of tensor data; 0 means DefaultAlignment (and no
	// general.alignment key is written unless added explicitly).
	Alignment int
	kvs       []KV
	tensors   []writerTensor
}

type writerTensor struct {
	info TensorInfo
	data []byte
}

// Set adds a metadata pair. v is one of the scalar Go types listed on KV,
// a string, an Array, or a slice of a scalar type or string (written as an
// array).
func (w *Writer) Set(key string, v any) {
	t, val := valueTypeOf(v)
	w.kvs = append(w.kvs, KV{Key: key, Type: t, Value: val})
}

func valueTypeOf(v any) (ValueType, any) {
	switch x := v.(type) {
	case uint8:
		return TypeUint8, x
	case int8:
		return TypeInt8, x
	case uint16:
		return TypeUint16, x
	case int16:
		return TypeInt16, x
	case uint32:
		return TypeUint32, x
	case int32:
		return TypeInt32, x
	case float32:
		return TypeFloat32, x
	case bool:
		return TypeBool, x
	case string:
		return TypeString, x
	case uint64:
		return TypeUint64, x
	case int64:
		return TypeInt64, x
	case float64:
		return TypeFloat64, x
	case int:
		return TypeInt32, int32(x)
	case Array:
		return TypeArray, x
	case []uint8:
		return TypeArray, Array{TypeUint8, x}
	case []int8:
		return TypeArray, Array{TypeInt8, x}
	case []uint16:
		return TypeArray, Array{TypeUint16, x}
	case []int16:
		return TypeArray, Array{TypeInt16, x}
	case []uint32:
		return TypeArray, Array{TypeUint32, x}
	case []int32:
		return TypeArray, Array{TypeInt32, x}
	case []float32:
		return TypeArray, Array{TypeFloat32, x}
	case []bool:
		return TypeArray, Array{TypeBool, x}
	case []string:
		return TypeArray, Array{TypeString, x}
	case []uint64:
		return TypeArray, Array{TypeUint64, x}
	case []int64:
		return TypeArray, Array{TypeInt64, x}
	case []float64:
		return TypeArray, Array{TypeFloat64, x}
	case []Array:
		elem := TypeArray
		return TypeArray, Array{elem, x}
	}
	panic(fmt.Sprintf("gguf: Writer.Set: unsupported value type %T", v))
}

// AddTensor adds a tensor whose data is already encoded as typ.
func (w *Writer) AddTensor(name string, typ TensorType, dims []uint64, data []byte) {
	w.tensors = append(w.tensors, writerTensor{TensorInfo{Name: name, Dims: dims, Type: typ}, data})
}

// AddFloat32 quantises values to typ and adds the tensor.
func (w *Writer) AddFloat32(name string, typ TensorType, dims []uint64, values []float32) error {
	data, err := Quantize(typ, values)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	w.AddTensor(name, typ, dims, data)
	return nil
}

// WriteTo writes the file.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align := uint64(w.Alignment)
	if align == 0 {
		align = DefaultAlignment
	}
	cw := &countWriter{w: bufio.NewWriter(out)}
	e := &encoder{w: cw}
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Type))
		e.value(kv.Type, kv.Value)
	}
	var off uint64
	for i := range w.tensors {
		t := &w.tensors[i]
		t.info.Offset = off
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(off)
		off = alignUp(off+uint64(len(t.data)), align)
	}
	e.pad(align)
	for _, t := range w.tensors {
		e.raw(t.data)
		e.pad(align)
	}
	if e.err == nil {
		e.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, e.err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type encoder struct {
	w   *countWriter
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.buf[:], v); e.raw(e.buf[:2]) }
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.buf[:], v); e.raw(e.buf[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.buf[:], v); e.raw(e.buf[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func (e *encoder) pad(align uint64) {
	n := uint64(e.w.n)
	if p := alignUp(n, align) - n; p > 0 {
		e.raw(make([]byte, p))
	}
}

func (e *encoder) value(t ValueType, v any) {
	switch t {
	case TypeUint8:
		e.raw([]byte{v.(uint8)})
	case TypeInt8:
		e.raw([]byte{byte(v.(int8))})
	case TypeUint16:
		e.u16(v.(uint16))
	case TypeInt16:
		e.u16(uint16(v.(int16)))
	case TypeUint32:
		e.u32(v.(uint32))
	case TypeInt32:
		e.u32(uint32(v.(int32)))
	case TypeFloat32:
		e.u32(math.Float32bits(v.(float32)))
	case TypeBool:
		b := byte(0)
		if v.(bool) {
			b = 1
		}
		e.raw([]byte{b})
	case TypeString:
		e.str(v.(string))
	case TypeUint64:
		e.u64(v.(uint64))
	case TypeInt64:
		e.u64(uint64(v.(int64)))
	case TypeFloat64:
		e.u64(math.Float64bits(v.(float64)))
	case TypeArray:
		a := v.(Array)
		e.u32(uint32(a.Elem))
		e.u64(uint64(a.Len()))
		forEach(a, func(x any) { e.value(a.Elem, x) })
	}
}

func forEach(a Array, f func(any)) {
	switch v := a.Values.(type) {
	case []uint8:
		each(v, f)
	case []int8:
		each(v, f)
	case []uint16:
		each(v, f)
	case []int16:
		each(v, f)
	case []uint32:
		each(v, f)
	case []int32:
		each(v, f)
	case []float32:
		each(v, f)
	case []bool:
		each(v, f)
	case []string:
		each(v, f)
	case []uint64:
		each(v, f)
	case []int64:
		each(v, f)
	case []float64:
		each(v, f)
	case []Array:
		each(v, f)
	}
}

func each[T any](s []T, f func(any)) {
	for _, x := range s {
		f(x)
	}
}
