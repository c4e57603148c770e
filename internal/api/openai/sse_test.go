package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/inferbox/inferbox/internal/api/streamwrite"
)

func chatBase() chatCompletion {
	return chatCompletion{ID: "chatcmpl-abc", Object: "chat.completion.chunk", Created: 1764200000,
		Model: `odd "choices":[] model`, SystemFingerprint: "inferbox"}
}

// A chunk framed by splitFrame is byte for byte the chunk json.Marshal
// writes for the whole struct.
func TestFramedChunkMatchesMarshal(t *testing.T) {
	fr0 := "stop"
	for _, c := range []chatChoice{
		{Index: 0, Delta: map[string]any{"content": " the <b> & \u2028"}},
		{Index: 2, Delta: map[string]any{"role": "assistant", "content": ""}},
		{Index: 1, Delta: map[string]any{}, FinishReason: &fr0},
	} {
		whole := chatBase()
		whole.Choices = []chatChoice{c}
		want, err := json.Marshal(whole)
		if err != nil {
			t.Fatal(err)
		}
		empty := chatBase()
		empty.Choices = []chatChoice{}
		fr, err := splitFrame(empty)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		s := &sse{w: nil, out: streamwrite.New(context.Background(), &out, 0), started: true}
		if err := s.sendChoice(fr, c); err != nil {
			t.Fatal(err)
		}
		s.close()
		if got := out.String(); got != "data: "+string(want)+"\n\n" {
			t.Errorf("framed\n %s\nmarshal\n %s", got, want)
		}
	}
}

// BenchmarkChatChunk is the generator's cost of one streamed chat token:
// "before" encodes the whole chunk and writes it (what send did), "framed"
// encodes only the choice into the stream's buffer.
func BenchmarkChatChunk(b *testing.B) {
	base := chatBase()
	c := chatChoice{Index: 0, Delta: map[string]any{"content": " the"}}
	b.Run("before", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ch := base
			ch.Choices = []chatChoice{c}
			out, err := json.Marshal(ch)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(io.Discard, "data: %s\n\n", out)
		}
	})
	b.Run("framed", func(b *testing.B) {
		empty := base
		empty.Choices = []chatChoice{}
		fr, err := splitFrame(empty)
		if err != nil {
			b.Fatal(err)
		}
		s := &sse{out: streamwrite.New(context.Background(), io.Discard, 0), started: true}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.sendChoice(fr, c); err != nil {
				b.Fatal(err)
			}
		}
		s.close()
	})
}
