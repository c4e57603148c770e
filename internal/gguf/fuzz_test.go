package gguf

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzParseHeader checks that hostile headers never panic and never make the
// parser allocate more than the input can justify.
func FuzzParseHeader(f *testing.F) {
	w := &Writer{}
	w.Set("general.architecture", "llama")
	w.Set("tokenizer.ggml.tokens", []string{"a", "b"})
	w.Set("nested", Array{TypeArray, []Array{{TypeInt32, []int32{1}}}})
	w.AddTensor("t", Q8_0, []uint64{32, 1}, make([]byte, 34))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("GGUF"))
	// Huge counts with a tiny body.
	huge := []byte("GGUF\x03\x00\x00\x00")
	huge = binary.LittleEndian.AppendUint64(huge, 1<<62)
	huge = binary.LittleEndian.AppendUint64(huge, 1<<62)
	f.Add(huge)
	// A string length of 2^63.
	long := []byte("GGUF\x03\x00\x00\x00")
	long = binary.LittleEndian.AppendUint64(long, 0)
	long = binary.LittleEndian.AppendUint64(long, 1)
	long = binary.LittleEndian.AppendUint64(long, 1<<63)
	f.Add(long)
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		for _, ti := range file.Tensors {
			tn, ok := file.Tensor(ti.Name)
			if !ok {
				t.Fatalf("tensor %q listed but not found", ti.Name)
			}
			if uint64(len(tn.Data)) != ti.Bytes() {
				t.Fatalf("tensor %q: %d bytes, want %d", ti.Name, len(tn.Data), ti.Bytes())
			}
		}
	})
}
