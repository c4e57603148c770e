package llama

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
)

// BenchmarkGenerate measures decode speed on stories260K: greedy, the
// reference prompt, 256 positions. It reports generated tokens per second
// (prompt processing included, as llama2.c's run.c counts it).
func BenchmarkGenerate(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			m := loadStories(b, threads)
			prompt := m.Tokenizer().Encode("Once upon a time", true)
			benchGenerate(b, m, prompt, 256-len(prompt), 1)
		})
	}
}

// benchGenerate runs conc concurrent greedy generations of n tokens from
// prompt per iteration and reports their aggregate tokens per second.
func benchGenerate(b *testing.B, m *Model, prompt []int, n, conc int) {
	req := &GenerateRequest{Tokens: prompt, Params: Params{MaxTokens: n}}
	var mu sync.Mutex
	tokens := 0
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for c := 0; c < conc; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := m.Generate(context.Background(), req, func(Token) error { return nil })
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				tokens += u.OutputTokens
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
	b.ReportMetric(float64(tokens)/(cpuSeconds()-cpu0), "tok/cpu-s")
}

// stories15M is a random-weight model with the shape of llama2.c's
// stories15M: dim 288, 6 layers, 6 heads, hidden 768, vocab 32000,
// context 256, tied embeddings (15.2M parameters). The rows of BOS and
// EOS are scaled down so neither is ever the greedy choice: generations
// always run to their length (run.c stops at BOS).
func stories15M(typ gguf.TensorType) synth {
	extra := make([]string, 32000-259)
	for i := range extra {
		extra[i] = fmt.Sprintf("▁w%d", i)
	}
	return synth{arch: "llama", typ: typ, nEmbd: 288, nLayer: 6, nHead: 6, nHeadKV: 6, nFF: 768, seed: 15, ctx: 256, tied: true,
		vocabExtra: extra, mutate: func(name string, vals []float32) {
			if name == "token_embd.weight" {
				for i := 1 * 288; i < 3*288; i++ {
					vals[i] *= 1e-3
				}
			}
		}}
}

// BenchmarkStories15M: decode speed of the stories15M shape in F32 and
// Q8_0 (one sequence, 1 and 2 threads; 255 generated tokens after BOS, as
// run.c -n 256), and aggregate speed of 8 concurrent sequences (64 tokens
// each) against 1.
func BenchmarkStories15M(b *testing.B) {
	dir := b.TempDir()
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		path := stories15M(typ).write(b, dir)
		for _, threads := range []int{1, 2} {
			m, err := Load(gguf.NewRegistry(), path, 0, threads, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/decode/threads=%d", typ, threads), func(b *testing.B) {
				benchGenerate(b, m, []int{1}, 255, 1)
			})
			for _, conc := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/concurrent=%d/threads=%d", typ, conc, threads), func(b *testing.B) {
					benchGenerate(b, m, []int{1}, 64, conc)
				})
			}
			m.Close()
		}
	}
}

// BenchmarkPrefill15M measures prompt processing (one 200-token prompt,
// batched) against feeding the same tokens one at a time.
func BenchmarkPrefill15M(b *testing.B) {
	path := stories15M(gguf.F32).write(b, b.TempDir())
	m, err := Load(gguf.NewRegistry(), path, 0, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	prompt := make([]int, 200)
	for i := range prompt {
		prompt[i] = 300 + i*7
	}
	b.Run("batched", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var sc scratch
			s := m.newState()
			for j := 0; j < len(prompt); j += prefillChunk {
				m.forwardBatch(&sc, itemsOf([]*step{{s: s, tokens: prompt[j:min(j+prefillChunk, len(prompt))], logits: true}}))
			}
		}
		b.ReportMetric(float64(len(prompt)*b.N)/b.Elapsed().Seconds(), "tok/s")
	})
	b.Run("one-by-one", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var sc scratch
			s := m.newState()
			for j, id := range prompt {
				m.forwardBatch(&sc, []item{{s: s, tok: id, pos: j, logits: j == len(prompt)-1}})
			}
		}
		b.ReportMetric(float64(len(prompt)*b.N)/b.Elapsed().Seconds(), "tok/s")
	})
}

// TestWriteLlama2c writes the stories15M-shaped random model as GGUF (F32
// and Q8_0) and, from the same F32 values, in llama2.c's legacy format
// (model.bin, tokenizer.bin) for comparing with run.c, and quantized in
// llama2.c's Q8_0 format (modelq.bin) for runq.c; see
// bench/llama/README.md. It runs only when INFERBOX_LLAMA2C_DIR names the
// output directory.
func TestWriteLlama2c(t *testing.T) {
	dir := os.Getenv("INFERBOX_LLAMA2C_DIR")
	if dir == "" {
		t.Skip("INFERBOX_LLAMA2C_DIR not set")
	}
	vals := map[string][]float32{}
	s := stories15M(gguf.F32)
	inner := s.mutate
	s.mutate = func(name string, v []float32) {
		inner(name, v)
		vals[name] = v
	}
	s.write(t, dir)
	q := stories15M(gguf.Q8_0)
	q.write(t, dir)

	f, err := os.Create(filepath.Join(dir, "model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	put := func(v any) {
		if err := binary.Write(w, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	const dim, hidden, layers, heads, vocab, seqLen = 288, 768, 6, 6, 32000, 256
	// A positive vocabulary size says the classifier is the embedding.
	put([]int32{dim, hidden, layers, heads, heads, vocab, seqLen})
	put(vals["token_embd.weight"])
	each := func(suffix string) {
		for l := 0; l < layers; l++ {
			put(vals[fmt.Sprintf("blk.%d.%s", l, suffix)])
		}
	}
	each("attn_norm.weight")
	each("attn_q.weight")
	each("attn_k.weight")
	each("attn_v.weight")
	each("attn_output.weight")
	each("ffn_norm.weight")
	each("ffn_gate.weight") // w1
	each("ffn_down.weight") // w2
	each("ffn_up.weight")   // w3
	put(vals["output_norm.weight"])
	put(make([]float32, seqLen*dim/heads)) // freq_cis_real and _imag: unused by run.c
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	writeRunq(t, filepath.Join(dir, "modelq.bin"), vals)

	tokens, scores, _ := spmVocab(s.vocabExtra)
	f, err = os.Create(filepath.Join(dir, "tokenizer.bin"))
	if err != nil {
		t.Fatal(err)
	}
	w = bufio.NewWriter(f)
	maxLen := 0
	for _, tk := range tokens {
		maxLen = max(maxLen, len(tk))
	}
	put(int32(maxLen))
	for i, tk := range tokens {
		put(math.Float32bits(scores[i]))
		tk = strings.ReplaceAll(tk, "▁", " ") // llama2.c's pieces have plain spaces
		put(int32(len(tk)))
		w.WriteString(tk)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// writeRunq writes the stories15M-shaped weights in llama2.c's version 2
// format (export.py --version 2), which runq.c reads: a 256-byte header,
// the norms in float32, then every matrix as int8 values followed by one
// float32 scale per group. The group size is export.py's: 64, halved
// until it divides dim (288), so 32 here, the block size of GGUF Q8_0
// (whose scales are float16).
func writeRunq(t *testing.T, path string, vals map[string][]float32) {
	const dim, hidden, layers, heads, vocab, seqLen = 288, 768, 6, 6, 32000, 256
	gs := 64
	for dim%gs != 0 {
		gs /= 2
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	put := func(v any) {
		if err := binary.Write(w, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	put(uint32(0x616b3432)) // "ak42"
	put(int32(2))
	put([]int32{dim, hidden, layers, heads, heads, vocab, seqLen})
	put(uint8(1)) // shared classifier
	put(int32(gs))
	put(make([]byte, 256-(4+4+7*4+1+4)))
	each := func(suffix string, fn func([]float32)) {
		for l := 0; l < layers; l++ {
			fn(vals[fmt.Sprintf("blk.%d.%s", l, suffix)])
		}
	}
	putF := func(v []float32) { put(v) }
	each("attn_norm.weight", putF)
	each("ffn_norm.weight", putF)
	put(vals["output_norm.weight"])
	quant := func(v []float32) {
		q := make([]int8, len(v))
		sc := make([]float32, len(v)/gs)
		for g := range sc {
			grp := v[g*gs : (g+1)*gs]
			var amax float32
			for _, x := range grp {
				amax = max(amax, float32(math.Abs(float64(x))))
			}
			s := amax / 127
			sc[g] = s
			for i, x := range grp {
				if s != 0 {
					q[g*gs+i] = int8(math.RoundToEven(float64(x / s)))
				}
			}
		}
		put(q)
		put(sc)
	}
	quant(vals["token_embd.weight"])
	for _, suffix := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"} {
		each(suffix+".weight", quant)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// tinyLlamaShape is a random model with TinyLlama-1.1B's shape.
func tinyLlamaShape(typ gguf.TensorType) synth {
	s := stories15M(typ)
	s.nEmbd, s.nLayer, s.nHead, s.nHeadKV, s.nFF, s.ctx, s.tied = 2048, 22, 32, 4, 5632, 2048, false
	s.mutate = nil
	return s
}

// stories15MK is stories15M's shape with dim 256 and 4 heads of 64 (a
// 14 M-parameter model), since Q4_K and Q6_K rows are whole blocks of
// 256 and stories15M's dim is 288.
func stories15MK(typ gguf.TensorType) synth {
	s := stories15M(typ)
	s.nEmbd, s.nHead, s.nHeadKV = 256, 4, 4
	s.mutate = func(name string, vals []float32) {
		if name == "token_embd.weight" {
			for i := 1 * 256; i < 3*256; i++ {
				vals[i] *= 1e-3
			}
		}
	}
	return s
}

// BenchmarkStories15MK: decode speed of stories15MK in Q4_K (one
// sequence, BOS then 255 greedy tokens, 1 and 2 threads).
func BenchmarkStories15MK(b *testing.B) {
	path := stories15MK(gguf.Q4_K).write(b, b.TempDir())
	for _, threads := range []int{1, 2} {
		m, err := Load(gguf.NewRegistry(), path, 0, threads, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("Q4_K/decode/threads=%d", threads), func(b *testing.B) {
			benchGenerate(b, m, []int{1}, 255, 1)
		})
		m.Close()
	}
}

// TestWriteKQuantModels writes the Q4_K benchmark models as GGUF files
// for comparing with other engines (bench/llama/README.md):
// stories15MK-Q4_K.gguf and tinyllama-shape-Q4_K.gguf (0.6 GB). It runs
// only when INFERBOX_KQUANT_DIR names the output directory.
func TestWriteKQuantModels(t *testing.T) {
	dir := os.Getenv("INFERBOX_KQUANT_DIR")
	if dir == "" {
		t.Skip("INFERBOX_KQUANT_DIR not set")
	}
	for name, s := range map[string]synth{"stories15MK-Q4_K.gguf": stories15MK(gguf.Q4_K), "tinyllama-shape-Q4_K.gguf": tinyLlamaShape(gguf.Q4_K)} {
		if err := os.Rename(s.write(t, dir), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkTinyLlamaShape measures a random model with TinyLlama-1.1B's
// shape (dim 2048, 22 layers, 32 heads, 4 KV heads, hidden 5632, vocab
// 32000) in Q8_0 and Q4_K: time to first token for a 512-token prompt and
// decode speed. It writes 0.7-1.2 GB files, so it runs only when
// INFERBOX_BENCH_1B is set.
func BenchmarkTinyLlamaShape(b *testing.B) {
	if os.Getenv("INFERBOX_BENCH_1B") == "" {
		b.Skip("INFERBOX_BENCH_1B not set")
	}
	dir := b.TempDir()
	for _, typ := range []gguf.TensorType{gguf.Q8_0, gguf.Q4_K} {
		path := tinyLlamaShape(typ).write(b, dir)
		m, err := Load(gguf.NewRegistry(), path, 0, 2, nil)
		if err != nil {
			b.Fatal(err)
		}
		benchTTFTDecode(b, m, typ.String())
		m.Close()
		os.Remove(path)
	}
}

// benchTTFTDecode runs the two sub-benchmarks of BenchmarkTinyLlamaShape:
// time to first token for a 512-token prompt, and decode speed.
func benchTTFTDecode(b *testing.B, m *Model, name string) {
	prompt := make([]int, 512)
	for i := range prompt {
		prompt[i] = 300 + i*37
	}
	b.Run(name+"/ttft-512", func(b *testing.B) {
		cpu0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			if _, err := m.Generate(context.Background(), &GenerateRequest{Tokens: prompt, Params: Params{MaxTokens: 1}}, func(Token) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/ttft")
		b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/ttft")
	})
	b.Run(name+"/decode", func(b *testing.B) {
		benchGenerate(b, m, []int{1}, 16, 1)
	})
}

// BenchmarkGGUFFile is BenchmarkTinyLlamaShape's two measurements on an
// existing file named by INFERBOX_BENCH_GGUF (for example the
// tinyllama-shape-Q4_K.gguf TestWriteKQuantModels writes), with
// INFERBOX_BENCH_THREADS threads (default 2).
func BenchmarkGGUFFile(b *testing.B) {
	path := os.Getenv("INFERBOX_BENCH_GGUF")
	if path == "" {
		b.Skip("INFERBOX_BENCH_GGUF not set")
	}
	threads := 2
	if v := os.Getenv("INFERBOX_BENCH_THREADS"); v != "" {
		if _, err := fmt.Sscan(v, &threads); err != nil {
			b.Fatal(err)
		}
	}
	m, err := Load(gguf.NewRegistry(), path, 0, threads, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	benchTTFTDecode(b, m, filepath.Base(path))
}
