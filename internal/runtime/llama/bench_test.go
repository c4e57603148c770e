package llama

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkGenerate measures decode speed on stories260K: greedy, the
// reference prompt, 256 positions. It reports generated tokens per second
// (prompt processing included, as llama2.c's run.c counts it).
func BenchmarkGenerate(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			m := loadStories(b, threads)
			prompt := m.Tokenizer().Encode("Once upon a time", true)
			req := &GenerateRequest{Tokens: prompt, Params: Params{MaxTokens: 256 - len(prompt)}}
			tokens := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				u, err := m.Generate(context.Background(), req, func(Token) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				tokens += u.OutputTokens
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
