package gguf

import (
	"bytes"
	"errors"
	"github.com/inferbox/inferbox/internal/testmodel"
	"math"
	"reflect"
	"testing"
)

func storiesFile(t *testing.T) string {
	t.Helper()
	return testmodel.Stories260K(t)
}

func TestStories260K(t *testing.T) {
	reg := NewRegistry()
	f, err := reg.Open(storiesFile(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || len(f.Tensors) != 48 || len(f.KVs) != 19 {
		t.Fatalf("version %d, %d tensors, %d kvs; want 3, 48, 19", f.Version, len(f.Tensors), len(f.KVs))
	}
	if f.DataOffset != 14176 || f.Alignment != 32 {
		t.Errorf("data offset %d alignment %d, want 14176 and 32", f.DataOffset, f.Alignment)
	}
	ints := map[string]int64{
		"llama.context_length": 2048, "llama.embedding_length": 64, "llama.feed_forward_length": 172,
		"llama.attention.head_count": 8, "llama.attention.head_count_kv": 4, "llama.block_count": 5,
		"llama.rope.dimension_count": 8, "tokenizer.ggml.seperator_token_id": 0xFFFFFFFF,
	}
	for k, want := range ints {
		if got, ok := f.Int(k); !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", k, got, ok, want)
		}
	}
	if a, _ := f.String("general.architecture"); a != "llama" {
		t.Errorf("architecture %q", a)
	}
	if m, _ := f.String("tokenizer.ggml.model"); m != "llama" {
		t.Errorf("tokenizer model %q", m)
	}
	eps, _ := f.Float("llama.attention.layer_norm_rms_epsilon")
	if math.Abs(eps-1e-5) > 1e-9 {
		t.Errorf("rms eps %g", eps)
	}
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 512 {
		t.Fatalf("tokens: %d", len(toks))
	}
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	counts := map[int32]int{}
	for _, ty := range types {
		counts[ty]++
	}
	if counts[2] != 1 || counts[3] != 2 || counts[6] != 256 || counts[1] != 253 {
		t.Errorf("token type counts %v", counts)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || emb.Type != F32 || emb.Cols() != 64 || emb.Rows() != 512 {
		t.Fatalf("token_embd: %+v", emb.TensorInfo)
	}
	out, _ := f.Tensor("output.weight")
	if !bytes.Equal(out.Data, emb.Data) {
		t.Error("output.weight differs from token_embd.weight")
	}
	for _, ti := range f.Tensors {
		if ti.Type != F32 {
			t.Errorf("%s is %s", ti.Name, ti.Type)
		}
	}
}

func TestRegistryShares(t *testing.T) {
	reg := NewRegistry()
	path := storiesFile(t)
	a, err := reg.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := a.Tensor("token_embd.weight")
	tb, _ := b.Tensor("token_embd.weight")
	if &ta.Data[0] != &tb.Data[0] {
		t.Error("two opens of one file do not share the mapping")
	}
	if reg.Mapped() != 1 {
		t.Errorf("mapped %d", reg.Mapped())
	}
	a.Close()
	a.Close() // idempotent: must not drop b's reference
	if reg.Mapped() != 1 {
		t.Fatal("closing one holder unmapped the file")
	}
	_ = tb.Data[0] // still mapped
	b.Close()
	if reg.Mapped() != 0 {
		t.Errorf("mapped %d after all closed", reg.Mapped())
	}
}

func writeFile(t *testing.T, w *Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriterRoundTripAllValueTypes(t *testing.T) {
	w := &Writer{Alignment: 64}
	w.Set("general.alignment", uint32(64))
	vals := map[string]any{
		"u8": uint8(7), "i8": int8(-7), "u16": uint16(65000), "i16": int16(-300), "u32": uint32(1 << 31),
		"i32": int32(-5), "f32": float32(1.5), "bool": true, "str": "héllo", "u64": uint64(1 << 40),
		"i64": int64(-1 << 40), "f64": 2.25,
		"arr.str": Array{TypeString, []string{"a", "", "ü"}}, "arr.f32": Array{TypeFloat32, []float32{1, -2}},
		"arr.i32": Array{TypeInt32, []int32{3, -4}}, "arr.bool": Array{TypeBool, []bool{true, false}},
		"arr.nested": Array{TypeArray, []Array{{TypeUint8, []uint8{1, 2}}, {TypeString, []string{"x"}}}},
	}
	keys := []string{}
	for k, v := range vals {
		w.Set(k, v)
		keys = append(keys, k)
	}
	w.AddTensor("a", F32, []uint64{3}, make([]byte, 12))
	w.AddTensor("b", Q8_0, []uint64{32, 2}, make([]byte, 68))
	f, err := Parse(writeFile(t, w))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		got, _ := f.Value(k)
		if !reflect.DeepEqual(got, vals[k]) {
			t.Errorf("%s: got %#v want %#v", k, got, vals[k])
		}
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("alignment %d data offset %d", f.Alignment, f.DataOffset)
	}
	b, _ := f.Tensor("b")
	if b.Offset != 64 || b.Rows() != 2 || b.Cols() != 32 {
		t.Errorf("b: %+v", b.TensorInfo)
	}
}

func TestUnsupportedTensorTypeNamed(t *testing.T) {
	w := &Writer{}
	w.AddTensor("blk.0.ffn_up.weight", Q5_K, []uint64{256}, make([]byte, 176))
	_, err := Parse(writeFile(t, w))
	if !errors.Is(err, ErrUnsupported) || !bytes.Contains([]byte(err.Error()), []byte("Q5_K")) {
		t.Fatalf("err = %v; want unsupported naming Q5_K", err)
	}
}

func TestMalformed(t *testing.T) {
	w := &Writer{}
	w.Set("k", "v")
	w.AddTensor("t", F32, []uint64{4}, make([]byte, 16))
	good := writeFile(t, w)
	for _, n := range []int{0, 3, 4, 8, 20, 30, len(good) - 20} {
		if _, err := Parse(good[:n]); err == nil {
			t.Errorf("truncated to %d: no error", n)
		}
	}
	bad := bytes.Clone(good)
	bad[4] = 1 // version 1
	if _, err := Parse(bad); !errors.Is(err, ErrUnsupported) {
		t.Errorf("version 1: %v", err)
	}
}
