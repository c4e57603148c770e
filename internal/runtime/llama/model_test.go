package llama

import (
	"context"
	"github.com/inferbox/inferbox/internal/testmodel"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
)

func storiesPath(t testing.TB) string {
	t.Helper()
	return testmodel.Stories260K(t)
}

func loadStories(t testing.TB, threads int) *Model {
	t.Helper()
	m, err := Load(gguf.NewRegistry(), storiesPath(t), 0, threads, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

const storiesReference = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."

func generateText(t testing.TB, m *Model, req *GenerateRequest) (string, []int, Usage) {
	t.Helper()
	var sb strings.Builder
	var ids []int
	u, err := m.Generate(context.Background(), req, func(tk Token) error {
		sb.WriteString(tk.Text)
		ids = append(ids, tk.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String(), ids, u
}

func TestGreedyReference(t *testing.T) {
	m := loadStories(t, 1)
	prompt := m.Tokenizer().Encode("Once upon a time", true)
	// run.c -n 64 runs the forward pass on 64 positions, prompt included,
	// and prints the token sampled after the last one: 60 tokens. Its whole
	// output (checked with run.c at karpathy/llama2.c 350e04f) is the
	// reference line, a newline and "Lily".
	text, _, u := generateText(t, m, &GenerateRequest{Tokens: prompt, Params: Params{MaxTokens: 64 - len(prompt) + 1}})
	if text != storiesReference+"\nLily" {
		t.Fatalf("got  %q\nwant %q", text, storiesReference+"\nLily")
	}
	if u.FinishReason != FinishLength || u.InputTokens != len(prompt) || u.OutputTokens != 60 {
		t.Errorf("usage %+v", u)
	}
}

// TestDemoModel: the shipped demo model (examples/llm, trained by
// train.py there) continues "In the beginning" greedily with exactly the
// text the trainer's own numpy forward pass produced from the same
// weights, so the engine and the trainer agree on the architecture.
func TestDemoModel(t *testing.T) {
	m, err := Load(gguf.NewRegistry(), "../../../examples/llm/model/kjv-tiny.gguf", 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := m.Tokenizer().Encode("In the beginning", true)
	text, _, _ := generateText(t, m, &GenerateRequest{Tokens: prompt, Params: Params{MaxTokens: 48 - len(prompt)}})
	const want = " the day of the Hittitull they shall eat every man's hand, and the sea after them: And they shall bind the"
	if text != want {
		t.Errorf("got  %q\nwant %q", text, want)
	}
}
