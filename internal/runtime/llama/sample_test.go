package llama

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/runtime"
)

func seed(v uint64) *uint64 { return &v }

// empirical draws n samples from fixed logits and returns frequencies.
func empirical(p Params, logits []float32, n int) []float64 {
	s := newSampler(p, 12345)
	freq := make([]float64, len(logits))
	for i := 0; i < n; i++ {
		freq[s.sample(logits, nil)]++
	}
	for i := range freq {
		freq[i] /= float64(n)
	}
	return freq
}

func softmaxOf(l []float64, temp float64) []float64 {
	out := make([]float64, len(l))
	var sum float64
	for i, v := range l {
		out[i] = math.Exp(v / temp)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func TestSamplingDistributions(t *testing.T) {
	logits := []float32{2, 1, 0.5, 0, -1, -3}
	l64 := []float64{2, 1, 0.5, 0, -1, -3}
	cases := []struct {
		name string
		p    Params
		want []float64
	}{
		{"temperature only", Params{Temperature: 0.7}, softmaxOf(l64, 0.7)},
		{"top_k 3", Params{Temperature: 1.3, TopK: 3}, append(softmaxOf(l64[:3], 1.3), 0, 0, 0)},
		// At temperature 1 the probabilities are .557 .205 .124 .075 .028 .004:
		// top_p 0.8 keeps the first three (cumulative .886 is the first ≥ .8).
		{"top_p 0.8", Params{Temperature: 0.5, TopP: 0.8}, append(softmaxOf(l64[:3], 0.5), 0, 0, 0)},
		// min_p 0.1 keeps tokens with p ≥ .0557: the first four.
		{"min_p 0.1", Params{Temperature: 1, MinP: 0.1}, append(softmaxOf(l64[:4], 1), 0, 0)},
		{"top_k off (-1)", Params{Temperature: 1, TopK: -1}, softmaxOf(l64, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := empirical(c.p, logits, 40000)
			for i := range got {
				// Binomial standard error at n=40000 is at most .0025; allow 4σ.
				if math.Abs(got[i]-c.want[i]) > 0.01 || (c.want[i] == 0 && got[i] != 0) {
					t.Errorf("token %d: frequency %.4f, want %.4f (all: %v)", i, got[i], c.want[i], got)
				}
			}
		})
	}
}

func TestPenalties(t *testing.T) {
	logits := []float32{2, 1.9, -1}
	// Greedy picks 0 unless the penalties push it below token 1.
	if id := newSampler(Params{}, 0).sample(logits, []int{0}); id != 0 {
		t.Fatalf("no penalty: %d", id)
	}
	for _, p := range []Params{{RepetitionPenalty: 1.1}, {FrequencyPenalty: 0.2}, {PresencePenalty: 0.2}} {
		if id := newSampler(p, 0).sample(logits, []int{0}); id != 1 {
			t.Errorf("%+v: picked %d, want 1", p, id)
		}
	}
	// Repetition penalty multiplies negative logits (making them more negative).
	logits = []float32{-1, -1.05}
	if id := newSampler(Params{RepetitionPenalty: 1.2}, 0).sample(logits, []int{0}); id != 1 {
		t.Errorf("negative logit: picked %d, want 1", id)
	}
	// Only the last PenaltyWindow tokens count.
	hist := make([]int, PenaltyWindow+1)
	for i := range hist {
		hist[i] = 2
	}
	hist[0] = 0
	if id := newSampler(Params{PresencePenalty: 1}, 0).sample([]float32{2, 1.9, -1}, hist); id != 0 {
		t.Errorf("token outside the window was penalised")
	}
}

func TestSeedDeterminism(t *testing.T) {
	m := loadStories(t, 1)
	gen := func(s uint64) string {
		text, _, _ := generateText(t, m, &GenerateRequest{Prompt: "Once upon a time", Params: Params{Temperature: 1, TopK: 40, TopP: 0.95, Seed: seed(s), MaxTokens: 40}})
		return text
	}
	a, b, c := gen(42), gen(42), gen(43)
	if a != b {
		t.Errorf("same seed, different output:\n%q\n%q", a, b)
	}
	if a == c {
		t.Errorf("seeds 42 and 43 gave the same output %q", a)
	}
}

func TestStopSequences(t *testing.T) {
	m := loadStories(t, 1)
	cases := []struct {
		stop    []string
		want    string
		matched string
	}{
		// "Lily" is two tokens, "L" and "ily".
		{[]string{"Lily"}, ", there was a little girl named ", "Lily"},
		{[]string{"girl named"}, ", there was a little ", "girl named"},
		// Overlapping: the one that starts first wins, even if another ends first.
		{[]string{"Lily. She", "named Lily"}, ", there was a little girl ", "named Lily"},
		{[]string{"zzz"}, storiesReference + "\nLily", ""},
	}
	for _, c := range cases {
		var parts []string
		u, err := m.Generate(context.Background(), &GenerateRequest{Prompt: "Once upon a time", Params: Params{Stop: c.stop, MaxTokens: 60}},
			func(tk Token) error { parts = append(parts, tk.Text); return nil })
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(parts, "")
		if got != c.want || u.StopSequence != c.matched {
			t.Errorf("stop %q: got %q (stop %q), want %q (stop %q)", c.stop, got, u.StopSequence, c.want, c.matched)
		}
		if c.matched != "" && u.FinishReason != FinishStop {
			t.Errorf("finish reason %q", u.FinishReason)
		}
	}
}

func TestTextStreamHoldsBackStopPrefixes(t *testing.T) {
	ts := newTextStream([]string{"END"})
	var out []string
	for _, piece := range []string{"abc E", "N", "x", "EN", "D tail"} {
		text, stop := ts.push([]byte(piece))
		out = append(out, text)
		if stop != "" {
			break
		}
	}
	if strings.Join(out, "|") != "abc ||ENx||" {
		t.Errorf("released %q", strings.Join(out, "|"))
	}
}

func TestUTF8SplitAcrossTokens(t *testing.T) {
	ts := newTextStream(nil)
	emoji := []byte("🙂é")
	var got []string
	for _, b := range emoji {
		text, _ := ts.push([]byte{b})
		got = append(got, text)
	}
	if strings.Join(got, "|") != "|||🙂||é" {
		t.Errorf("released %q", got)
	}
	// An incomplete tail at the end becomes U+FFFD; invalid bytes too.
	ts.push([]byte{0xF0, 0x9F})
	if f := ts.flush(); f != "\uFFFD" {
		t.Errorf("flush %q", f)
	}
	if text, _ := ts.push([]byte{0xFF, 'a'}); text != "\uFFFDa" {
		t.Errorf("invalid byte: %q", text)
	}
	// The real vocabulary: CJK falls back to byte tokens, decoded whole.
	tok := loadStories(t, 1).Tokenizer()
	ids := tok.Encode("日本", false)
	ts = newTextStream(nil)
	var sb strings.Builder
	for _, id := range ids {
		text, _ := ts.push(tok.Piece(id))
		if strings.ContainsRune(text, utf8RuneError) {
			t.Fatalf("partial character released: %q", text)
		}
		sb.WriteString(text)
	}
	if sb.String() != " 日本" {
		t.Errorf("decoded %q", sb.String())
	}
}

const utf8RuneError = '\uFFFD'

func TestInvalidParams(t *testing.T) {
	m := loadStories(t, 1)
	cases := []struct {
		p    Params
		name string
	}{
		{Params{Temperature: -0.1}, "temperature"},
		{Params{Temperature: math.NaN()}, "temperature"},
		{Params{TopK: -2}, "top_k"},
		{Params{TopP: 1.5}, "top_p"},
		{Params{TopP: -0.5}, "top_p"},
		{Params{MinP: 2}, "min_p"},
		{Params{RepetitionPenalty: -1}, "repetition_penalty"},
		{Params{FrequencyPenalty: 3}, "frequency_penalty"},
		{Params{PresencePenalty: -3}, "presence_penalty"},
		{Params{MaxTokens: -1}, "max_tokens"},
		{Params{Stop: []string{""}}, "stop"},
	}
	for _, c := range cases {
		_, err := m.Generate(context.Background(), &GenerateRequest{Prompt: "x", Params: c.p}, func(Token) error { return nil })
		var me *runtime.ModelError
		if !errors.As(err, &me) || me.StatusCode != 400 || !strings.Contains(me.Message, c.name) {
			t.Errorf("%+v: err = %v, want a 400 naming %s", c.p, err, c.name)
		}
	}
}

func TestEndTokenAndLength(t *testing.T) {
	m := loadStories(t, 1)
	_, _, u := generateText(t, m, &GenerateRequest{Prompt: "Once", Params: Params{MaxTokens: 3}})
	if u.FinishReason != FinishLength || u.OutputTokens != 3 {
		t.Errorf("max tokens: %+v", u)
	}
	// A model whose every position predicts </s>: all embeddings equal,
	// the layers add nothing, and only the output row of </s> is non-zero.
	sy := defaultSynth()
	sy.mutate = func(name string, v []float32) {
		switch {
		case name == "token_embd.weight", name == "output_norm.weight":
			fill(v, 1)
		case strings.HasSuffix(name, "attn_output.weight"), strings.HasSuffix(name, "ffn_down.weight"):
			fill(v, 0)
		case name == "output.weight":
			fill(v, 0)
			fill(v[2*sy.nEmbd:3*sy.nEmbd], 1)
		}
	}
	em, err := Load(gguf.NewRegistry(), sy.write(t, t.TempDir()), 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	text, ids, u := generateText(t, em, &GenerateRequest{Prompt: "ab", Params: Params{MaxTokens: 10}})
	if u.FinishReason != FinishStop || u.EndToken != 2 || u.StopSequence != "" || u.OutputTokens != 1 || len(ids) != 1 || ids[0] != 2 || text != "" {
		t.Errorf("end token: %+v ids %v text %q", u, ids, text)
	}
}

func fill(v []float32, x float32) {
	for i := range v {
		v[i] = x
	}
}
