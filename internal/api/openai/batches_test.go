package openai

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/genai"
)

// Any input line gives one JSON output line, failed unless the handler
// answered 200 (with no models registered, it never does).
func FuzzBatchRecord(f *testing.F) {
	for _, s := range []string{
		`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}`,
		`{"custom_id":"b","method":"GET","url":"/v1/chat/completions","body":{}}`,
		`{"custom_id":"c","method":"POST","url":"/v1/completions","body":{"model":"m","prompt":"x"}}`,
		`{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"stream":true}}`,
		`{"custom_id":"e","method":"POST","url":"/v1/chat/completions","body":[1]}`,
		`{"method":"POST"}`, `not json`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	svc, err := genai.New(genai.Config{}, genai.Deps{})
	if err != nil {
		f.Fatal(err)
	}
	format := New(svc, nil, slog.New(slog.DiscardHandler)).BatchFormat()
	job := &catalog.ModelJob{ID: "batch_x", Kind: BatchKind}
	setExtra(job, batchExtra{Endpoint: "/v1/chat/completions"})
	f.Fuzz(func(t *testing.T, line []byte) {
		rec := format.Record(context.Background(), job, 0, line)
		var out outputLine
		if err := json.Unmarshal(rec.Line, &out); err != nil {
			t.Fatalf("output line %q: %v", rec.Line, err)
		}
		if !rec.Failed || out.Error == nil || out.Error.Code == "" {
			t.Fatalf("line %q: %s", line, rec.Line)
		}
		_ = format.Validate(context.Background(), &catalog.ModelJob{}, slices.Values([][]byte{line, line}))
	})
}
