package llama

import (
	"container/heap"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/runtime"
)

// Token types from tokenizer.ggml.token_type.
const (
	tokNormal      = 1
	tokUnknown     = 2
	tokControl     = 3
	tokUserDefined = 4
	tokUnused      = 5
	tokByte        = 6
)

// Tokenizer turns text into token ids and back, using the vocabulary in a
// GGUF file. It is read-only after construction and safe for concurrent use.
type Tokenizer struct {
	model  string // "llama" (SentencePiece-style) or "gpt2" (byte-level BPE)
	pre    string // pre-tokenizer name for gpt2
	tokens []string
	scores []float32
	types  []int32
	index  map[string]int

	bos, eos, unk  int // -1 when absent
	addBOS, addEOS bool
	addSpacePrefix bool
	end            map[int]bool // end-of-generation tokens

	special [256][]int // split-out tokens (control, user-defined) by first byte, longest first
	byteTok [256]int   // SPM <0xNN> tokens, -1 when absent

	merges  map[string]int // gpt2: "a b" -> rank
	byteEnc [256]rune      // gpt2 byte -> unicode char
	byteDec map[rune]byte
}

func newTokenizer(f *gguf.File) (*Tokenizer, error) {
	t := &Tokenizer{bos: -1, eos: -1, unk: -1, end: map[int]bool{}}
	t.model, _ = f.String("tokenizer.ggml.model")
	var ok bool
	if t.tokens, ok = f.Strings("tokenizer.ggml.tokens"); !ok || len(t.tokens) == 0 {
		return nil, fmt.Errorf("gguf has no tokenizer.ggml.tokens")
	}
	n := len(t.tokens)
	t.scores, _ = f.Float32s("tokenizer.ggml.scores")
	t.types, _ = f.Int32s("tokenizer.ggml.token_type")
	if t.scores != nil && len(t.scores) != n || t.types != nil && len(t.types) != n {
		return nil, fmt.Errorf("tokenizer scores/types have %d/%d entries for %d tokens", len(t.scores), len(t.types), n)
	}
	if t.types == nil {
		t.types = make([]int32, n)
		for i := range t.types {
			t.types[i] = tokNormal
		}
	}
	t.index = make(map[string]int, n)
	for i, s := range t.tokens {
		if _, dup := t.index[s]; !dup {
			t.index[s] = i
		}
	}
	id := func(key string) int {
		v, ok := f.Int(key)
		if !ok || v < 0 || v >= int64(n) {
			return -1
		}
		return int(v)
	}
	t.bos, t.eos, t.unk = id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id"), id("tokenizer.ggml.unknown_token_id")
	for _, k := range []string{"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		if i := id(k); i >= 0 {
			t.end[i] = true
		}
	}
	for i, s := range t.tokens {
		if t.types[i] == tokControl {
			switch s {
			case "<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<|end|>", "<end_of_turn>", "<|eom_id|>", "</s>":
				t.end[i] = true
			}
		}
	}
	switch t.model {
	case "llama":
		t.addBOS, t.addSpacePrefix = true, true
		for i := range t.byteTok {
			t.byteTok[i] = -1
			if j, ok := t.index[fmt.Sprintf("<0x%02X>", i)]; ok {
				t.byteTok[i] = j
			}
		}
		if t.scores == nil {
			return nil, fmt.Errorf("llama tokenizer without tokenizer.ggml.scores")
		}
	case "gpt2":
		merges, ok := f.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, fmt.Errorf("gpt2 tokenizer without tokenizer.ggml.merges")
		}
		t.merges = make(map[string]int, len(merges))
		for i, m := range merges {
			if _, dup := t.merges[m]; !dup {
				t.merges[m] = i
			}
		}
		t.pre, _ = f.String("tokenizer.ggml.pre")
		if !knownPre(t.pre) {
			return nil, fmt.Errorf("%w: gpt2 pre-tokenizer %q (implemented: default, gpt2, llama3/llama-bpe, qwen2)", runtime.ErrUnsupported, t.pre)
		}
		t.initByteCodec()
	default:
		return nil, fmt.Errorf("%w: tokenizer model %q (implemented: llama, gpt2)", runtime.ErrUnsupported, t.model)
	}
	if v, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		t.addBOS = v
	}
	if v, ok := f.Bool("tokenizer.ggml.add_eos_token"); ok {
		t.addEOS = v
	}
	if v, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
		t.addSpacePrefix = v
	}
	for i, s := range t.tokens {
		if (t.types[i] == tokControl || t.types[i] == tokUserDefined) && s != "" {
			t.special[s[0]] = append(t.special[s[0]], i)
		}
	}
	for b := range t.special {
		slices.SortStableFunc(t.special[b], func(x, y int) int { return len(t.tokens[y]) - len(t.tokens[x]) })
	}
	return t, nil
}

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence token, -1 if none.
func (t *Tokenizer) BOS() int { return t.bos }

// IsEnd reports whether id ends generation (EOS, EOT and similar).
func (t *Tokenizer) IsEnd(id int) bool { return t.end[id] }

// IsControl reports whether id is a control token (BOS, EOS, chat
// markers), which renders as no text.
func (t *Tokenizer) IsControl(id int) bool {
	return id >= 0 && id < len(t.types) && t.types[id] == tokControl
}

// Encode tokenizes text. With addSpecial, BOS (and EOS) are added as the
// file asks. Control and user-defined tokens written literally in the text
// ("<|im_start|>") become those tokens, as llama.cpp's server does.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	var out []int
	if addSpecial && t.addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	prevSpecial := true
	start := 0
	flush := func(end int) {
		if end > start {
			out = t.encodeRaw(out, text[start:end], prevSpecial)
			prevSpecial = false
		}
	}
	for i := 0; i < len(text); {
		matched := -1
		for _, id := range t.special[text[i]] {
			if strings.HasPrefix(text[i:], t.tokens[id]) {
				matched = id
				break
			}
		}
		if matched < 0 {
			i++
			continue
		}
		flush(i)
		out = append(out, matched)
		prevSpecial = true
		i += len(t.tokens[matched])
		start = i
	}
	flush(len(text))
	if addSpecial && t.addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

func (t *Tokenizer) encodeRaw(out []int, text string, afterSpecial bool) []int {
	if t.model == "gpt2" {
		return t.encodeBPE(out, text)
	}
	if t.addSpacePrefix && afterSpecial {
		text = " " + text
	}
	return t.encodeSPM(out, strings.ReplaceAll(text, " ", "▁"))
}

// Piece returns the bytes a token stands for in output text. Control tokens
// produce nothing.
func (t *Tokenizer) Piece(id int) []byte {
	if id < 0 || id >= len(t.tokens) {
		return nil
	}
	s := t.tokens[id]
	switch t.types[id] {
	case tokControl, tokUnused:
		return nil
	case tokByte:
		if len(s) == 6 && strings.HasPrefix(s, "<0x") {
			if b, err := strconv.ParseUint(s[3:5], 16, 8); err == nil {
				return []byte{byte(b)}
			}
		}
	case tokUserDefined:
		return []byte(s)
	}
	if t.model == "gpt2" {
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if b, ok := t.byteDec[r]; ok {
				out = append(out, b)
			} else {
				out = utf8.AppendRune(out, r)
			}
		}
		return out
	}
	return []byte(strings.ReplaceAll(s, "▁", " "))
}

// Decode renders ids as text. A leading space that SentencePiece's dummy
// prefix added is removed when the ids start with BOS.
func (t *Tokenizer) Decode(ids []int) string {
	var b []byte
	for i, id := range ids {
		p := t.Piece(id)
		if i == 1 && ids[0] == t.bos && t.model == "llama" && t.addSpacePrefix && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		b = append(b, p...)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// SentencePiece-style encoding (llama.cpp's llm_tokenizer_spm): start from
// UTF-8 characters and repeatedly merge the adjacent pair whose merged text
// is a token with the highest score (leftmost on ties); characters that are
// not tokens fall back to <0xNN> byte tokens.

type spmSymbol struct {
	prev, next int
	text       string // empty once merged away
}

type spmBigram struct {
	left, right int
	score       float32
	size        int
}

type bigramHeap []spmBigram

func (h bigramHeap) Len() int { return len(h) }
func (h bigramHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].left < h[j].left
}
func (h bigramHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *bigramHeap) Push(x any)   { *h = append(*h, x.(spmBigram)) }
func (h *bigramHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (t *Tokenizer) encodeSPM(out []int, text string) []int {
	var syms []spmSymbol
	for i := 0; i < len(text); {
		_, n := utf8.DecodeRuneInString(text[i:])
		syms = append(syms, spmSymbol{prev: len(syms) - 1, next: len(syms) + 1, text: text[i : i+n]})
		i += n
	}
	if len(syms) == 0 {
		return out
	}
	syms[len(syms)-1].next = -1
	h := &bigramHeap{}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		s := syms[l].text + syms[r].text
		if id, ok := t.index[s]; ok {
			heap.Push(h, spmBigram{left: l, right: r, score: t.scores[id], size: len(s)})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for h.Len() > 0 {
		bg := heap.Pop(h).(spmBigram)
		l, r := &syms[bg.left], &syms[bg.right]
		if l.text == "" || r.text == "" || len(l.text)+len(r.text) != bg.size || l.next != bg.right {
			continue // stale
		}
		l.text += r.text
		r.text = ""
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = bg.left
		}
		try(l.prev, bg.left)
		try(bg.left, l.next)
	}
	for i := 0; i >= 0; i = syms[i].next {
		s := syms[i].text
		if id, ok := t.index[s]; ok && t.types[id] != tokUnused {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(s); j++ {
			switch {
			case t.byteTok[s[j]] >= 0:
				out = append(out, t.byteTok[s[j]])
			case t.unk >= 0:
				out = append(out, t.unk)
			}
		}
	}
	return out
}
