package llama

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
)

func TestPreTokenize(t *testing.T) {
	cases := []struct {
		style preStyle
		in    string
		want  []string
	}{
		{preGPT2, "Hello world's 12345 !!  x  \n", []string{"Hello", " world", "'s", " 12345", " !!", " ", " x", "  \n"}},
		{preLlama3, "Hello world'S 12345 !!  x\n\n y", []string{"Hello", " world", "'S", " ", "123", "45", " !!", " ", " x", "\n\n", " y"}},
		{preQwen2, "ab 123", []string{"ab", " ", "1", "2", "3"}},
		{preLlama3, "x.\r\n\ty", []string{"x", ".\r\n", "\ty"}},
		{preLlama3, "日本語 🙂🙂 ok", []string{"日本語", " 🙂🙂", " ok"}},
	}
	for _, c := range cases {
		if got := preTokenize(c.style, c.in); !slices.Equal(got, c.want) {
			t.Errorf("style %d %q: got %q, want %q", c.style, c.in, got, c.want)
		}
	}
}

// writeBPE writes a model with a byte-level BPE vocabulary: the 256 byte
// characters, merged tokens and two specials.
func writeBPE(t *testing.T, pre string) string {
	t.Helper()
	tk := &Tokenizer{}
	tk.initByteCodec()
	var tokens []string
	var types []int32
	for b := 0; b < 256; b++ {
		tokens = append(tokens, string(tk.byteEnc[b]))
		types = append(types, tokNormal)
	}
	merges := []string{"h e", "l l", "ll o", "he llo", "Ġ w", "Ġw o", "r l", "Ġwo rl", "Ġworl d"}
	for _, m := range merges {
		tokens = append(tokens, strings.ReplaceAll(m, " ", ""))
		types = append(types, tokNormal)
	}
	tokens = append(tokens, "<|endoftext|>", "<|im_start|>")
	types = append(types, tokControl, tokControl)
	s := defaultSynth()
	s.vocabExtra = nil
	path := s.write(t, t.TempDir())
	// Rewrite the tokenizer keys: copy every pair except the tokenizer's.
	reg := gguf.NewRegistry()
	f, err := reg.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &gguf.Writer{}
	for _, kv := range f.KVs {
		if !strings.HasPrefix(kv.Key, "tokenizer.") {
			w.Set(kv.Key, kv.Value)
		}
	}
	w.Set("tokenizer.ggml.model", "gpt2")
	w.Set("tokenizer.ggml.pre", pre)
	w.Set("tokenizer.ggml.tokens", tokens)
	w.Set("tokenizer.ggml.token_type", types)
	w.Set("tokenizer.ggml.merges", merges)
	w.Set("tokenizer.ggml.eos_token_id", uint32(len(tokens)-2))
	w.Set("tokenizer.ggml.bos_token_id", uint32(len(tokens)-2))
	w.Set("tokenizer.ggml.add_bos_token", false)
	for _, ti := range f.Tensors {
		tn, _ := f.Tensor(ti.Name)
		data, dims := tn.Data, ti.Dims
		if ti.Name == "token_embd.weight" || ti.Name == "output.weight" {
			// Resize the vocabulary dimension to the new token count.
			data = make([]byte, ti.Type.RowBytes(int(dims[0]))*len(tokens))
			copy(data, tn.Data)
			dims = []uint64{dims[0], uint64(len(tokens))}
		}
		w.AddTensor(ti.Name, ti.Type, dims, data)
	}
	out := filepath.Join(t.TempDir(), "bpe.gguf")
	fh, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := w.WriteTo(fh); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBPE(t *testing.T) {
	m, err := Load(gguf.NewRegistry(), writeBPE(t, "llama-bpe"), 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	id := func(s string) int { return tok.index[s] }
	got := tok.Encode("hello world<|endoftext|>", true)
	want := []int{id("hello"), id("Ġworld"), id("<|endoftext|>")}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	// "hell" stops at the merges available: he + ll.
	if got := tok.Encode("hell", false); !slices.Equal(got, []int{id("he"), id("ll")}) {
		t.Errorf("hell = %v", got)
	}
	for _, s := range []string{"hello world", "emoji 🙂👍🏽, CJK 日本語, e\u0301", "tabs\tand\r\nnewlines  ", "\x00\x01 bytes"} {
		ids := tok.Encode(s, true)
		if d := tok.Decode(ids); d != s {
			t.Errorf("round trip %q -> %q", s, d)
		}
	}
	if !tok.IsEnd(id("<|endoftext|>")) {
		t.Error("<|endoftext|> is not an end token")
	}
	// Generation runs with the BPE vocabulary.
	if _, _, u := generateText(t, m, &GenerateRequest{Prompt: "hello", Params: Params{MaxTokens: 5}}); u.InputTokens != 1 {
		t.Errorf("usage %+v", u)
	}
}

func TestBPEUnknownPreTokenizer(t *testing.T) {
	_, err := Load(gguf.NewRegistry(), writeBPE(t, "falcon"), 0, 1, nil)
	if err == nil || !strings.Contains(err.Error(), "falcon") {
		t.Fatalf("err = %v, want refusal naming the pre-tokenizer", err)
	}
}
