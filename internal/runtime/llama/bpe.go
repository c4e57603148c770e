package llama

import (
	"unicode"
	"unicode/utf8"
)

// Byte-level BPE (tokenizer.ggml.model = gpt2): text is split by the
// pre-tokenizer the file names, each piece's bytes are mapped to printable
// characters (GPT-2's bytes_to_unicode), and adjacent symbols are merged in
// the order of tokenizer.ggml.merges.

// preStyle selects the pre-tokenizer regex, written out by hand because Go's
// regexp has no look-ahead:
//
//	gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//	llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	qwen2:  as llama3 with \p{N} (one digit at a time) instead of \p{N}{1,3}
type preStyle int

const (
	preGPT2 preStyle = iota
	preLlama3
	preQwen2
)

func preStyleOf(name string) (preStyle, bool) {
	switch name {
	case "", "default", "gpt2":
		return preGPT2, true
	case "llama3", "llama-bpe", "llama-v3", "smaug-bpe":
		return preLlama3, true
	case "qwen2", "deepseek-r1-qwen":
		return preQwen2, true
	}
	return 0, false
}

func knownPre(name string) bool { _, ok := preStyleOf(name); return ok }

func (t *Tokenizer) initByteCodec() {
	t.byteDec = make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t.byteEnc[b] = rune(b)
		} else {
			t.byteEnc[b] = rune(256 + n)
			n++
		}
		t.byteDec[t.byteEnc[b]] = byte(b)
	}
}

func isL(r rune) bool  { return unicode.IsLetter(r) }
func isN(r rune) bool  { return unicode.IsNumber(r) }
func isS(r rune) bool  { return unicode.IsSpace(r) }
func isNL(r rune) bool { return r == '\r' || r == '\n' }

// preTokenize splits text into pieces per style.
func preTokenize(style preStyle, text string) []string {
	rs := []rune(text)
	var out []string
	byteOff := make([]int, len(rs)+1)
	o := 0
	for i, r := range rs {
		byteOff[i] = o
		o += utf8.RuneLen(r)
	}
	byteOff[len(rs)] = o
	for i := 0; i < len(rs); {
		n := matchPre(style, rs, i)
		if n <= 0 {
			n = 1
		}
		out = append(out, text[byteOff[i]:byteOff[i+n]])
		i += n
	}
	return out
}

// run returns the length of the run of runes satisfying f starting at i.
func run(rs []rune, i int, f func(rune) bool) int {
	j := i
	for j < len(rs) && f(rs[j]) {
		j++
	}
	return j - i
}

func matchPre(style preStyle, rs []rune, i int) int {
	n := len(rs)
	// Contractions.
	if rs[i] == '\'' && i+1 < n {
		fold := style != preGPT2
		c := rs[i+1]
		if fold {
			c = unicode.ToLower(c)
		}
		switch c {
		case 's', 't', 'm', 'd':
			return 2
		}
		if i+2 < n {
			c2 := rs[i+2]
			if fold {
				c2 = unicode.ToLower(c2)
			}
			switch {
			case c == 'r' && c2 == 'e', c == 'v' && c2 == 'e', c == 'l' && c2 == 'l':
				return 3
			}
		}
	}
	notSLN := func(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }
	if style == preGPT2 {
		// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
		sp := 0
		if rs[i] == ' ' && i+1 < n {
			sp = 1
		}
		for _, f := range []func(rune) bool{isL, isN, notSLN} {
			if k := run(rs, i+sp, f); k > 0 {
				return sp + k
			}
		}
	} else {
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if isL(rs[i]) {
			return run(rs, i, isL)
		}
		if !isNL(rs[i]) && !isN(rs[i]) && i+1 < n && isL(rs[i+1]) {
			return 1 + run(rs, i+1, isL)
		}
		// \p{N}{1,3} or \p{N}
		if isN(rs[i]) {
			if style == preQwen2 {
				return 1
			}
			return min(3, run(rs, i, isN))
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		sp := 0
		if rs[i] == ' ' {
			sp = 1
		}
		if i+sp < n {
			if k := run(rs, i+sp, notSLN); k > 0 {
				return sp + k + run(rs, i+sp+k, isNL)
			}
		}
		// \s*[\r\n]+ : up to and including the last newline of the space run.
		if ws := run(rs, i, isS); ws > 0 {
			last := -1
			for j := i; j < i+ws; j++ {
				if isNL(rs[j]) {
					last = j
				}
			}
			if last >= 0 {
				return last + 1 - i
			}
		}
	}
	// \s+(?!\S) then \s+
	if ws := run(rs, i, isS); ws > 0 {
		if i+ws == n || ws == 1 {
			return ws
		}
		return ws - 1
	}
	return 1
}

func (t *Tokenizer) encodeBPE(out []int, text string) []int {
	style, _ := preStyleOf(t.pre)
	for _, word := range preTokenize(style, text) {
		syms := make([]string, 0, len(word))
		for i := 0; i < len(word); i++ {
			syms = append(syms, string(t.byteEnc[word[i]]))
		}
		// llama-3's tokenizer ignores merges for words that are whole tokens.
		if id, ok := t.index[joinAll(syms)]; ok && style == preLlama3 {
			out = append(out, id)
			continue
		}
		for len(syms) > 1 {
			best, bestRank := -1, int(^uint(0)>>1)
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := t.merges[syms[i]+" "+syms[i+1]]; ok && r < bestRank {
					best, bestRank = i, r
				}
			}
			if best < 0 {
				break
			}
			syms[best] += syms[best+1]
			syms = append(syms[:best+1], syms[best+2:]...)
		}
		for _, s := range syms {
			if id, ok := t.index[s]; ok {
				out = append(out, id)
			} else if t.unk >= 0 {
				out = append(out, t.unk)
			}
		}
	}
	return out
}

func joinAll(s []string) string {
	n := 0
	for _, x := range s {
		n += len(x)
	}
	b := make([]byte, 0, n)
	for _, x := range s {
		b = append(b, x...)
	}
	return string(b)
}
