package llama

import (
	"slices"
	"testing"
)

// Encodings from llama2.c's encode() (run.c at karpathy/llama2.c 350e04f)
// with the same 512-token vocabulary (stories260K-tok512.bin), BOS added.
var storiesEncodings = []struct {
	text string
	ids  []int
}{
	{"Once upon a time", []int{1, 403, 407, 261, 378}},
	{"Hello world", []int{1, 346, 306, 414, 263, 304, 341}},
	{"The cat sat on the mat.", []int{1, 291, 280, 294, 262, 294, 353, 265, 284, 294, 426}},
	{"  two  spaces", []int{1, 410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419}},
	{"Lily's ball!", []int{1, 317, 439, 419, 268, 388, 443}},
	{"naïve café", []int{1, 297, 412, 198, 178, 360, 280, 412, 431, 485}},
	{"日本語", []int{1, 410, 233, 154, 168, 233, 159, 175, 235, 173, 161}},
	{"emoji 🙂 ok", []int{1, 344, 423, 414, 449, 417, 410, 243, 162, 156, 133, 334, 433}},
	{"a\nb", []int{1, 261, 13, 430}},
	{"123 + 456 = 579", []int{1, 410, 475, 479, 472, 410, 496, 410, 484, 480, 490, 410, 64, 410, 480, 491, 483}},
}

func TestStoriesEncodings(t *testing.T) {
	tok := loadStories(t, 1).Tokenizer()
	for _, c := range storiesEncodings {
		if got := tok.Encode(c.text, true); !slices.Equal(got, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.ids)
		}
	}
}

func TestStoriesRoundTrip(t *testing.T) {
	tok := loadStories(t, 1).Tokenizer()
	for _, s := range []string{
		"Once upon a time", "emoji 🙂👍🏽 and flags 🇫🇷", "CJK 日本語 中文 한국어", "combining e\u0301 a\u0308 n\u0303",
		"tabs\tand\nnewlines\r\n", "  leading and trailing  ", "bytes \x01\x7f", "",
	} {
		ids := tok.Encode(s, true)
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip %q -> %v -> %q", s, ids, got)
		}
	}
}

func TestSpecialTokensInText(t *testing.T) {
	tok := loadStories(t, 1).Tokenizer()
	ids := tok.Encode("Hi</s>Hi", false)
	if !slices.Contains(ids, 2) || ids[0] == 1 {
		t.Errorf("Encode = %v; want the literal </s> as token 2 and no BOS", ids)
	}
	if !tok.IsEnd(2) || tok.IsEnd(1) {
		t.Error("end tokens wrong")
	}
}
