package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"github.com/inferbox/inferbox/internal/testmodel"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/server"
)

// storiesRef is the reference greedy continuation of "Once upon a time"
// (../shared/models/README.md, llama2.c run.c on the same weights).
const storiesRef = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."

// storiesPath returns the shared test model, skipping when it is absent.
func storiesPath(t *testing.T) string {
	t.Helper()
	return testmodel.Stories260K(t)
}

// startGenAI starts a server with stories260K registered as
// meta.stories260k (raw chat format: it is a base model) and returns a
// Bedrock runtime client, the base URL and the data directory. The
// server verifies SigV4 with the access key AKIDANY/anysecret.
func startGenAI(t *testing.T, mutate func(*config.Config)) (*bedrockruntime.Client, string, string, func()) {
	t.Helper()
	model := storiesPath(t)
	var data string
	c, url, stop := start(t, func(cfg *config.Config) {
		cfg.FoundationModels = []config.FoundationModel{{ID: "meta.stories260k", Path: model, ChatFormat: "raw"}}
		// Signatures are verified: the SDK signs for service "bedrock".
		cfg.Auth.AccessKeys = map[string]string{"AKIDANY": "anysecret"}
		data = cfg.Data
		if mutate != nil {
			mutate(cfg)
		}
	})
	br := bedrockruntime.NewFromConfig(c.cfg, func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(url)
		o.HTTPClient = &http.Client{Transport: bufferedBodies{http.DefaultTransport.(*http.Transport).Clone()}}
	})
	return br, url, data, stop
}

// storiesOn serves stories260K as "meta.stories260k" (raw chat format)
// from the data directory data — for tests that restart the server on the
// same data — with the test access key AKIDANY/anysecret when keyed.
func storiesOn(t *testing.T, data string, keyed bool) func(*config.Config) {
	model := storiesPath(t)
	return func(cfg *config.Config) {
		cfg.FoundationModels = []config.FoundationModel{{ID: "meta.stories260k", Path: model, ChatFormat: "raw"}}
		if keyed {
			cfg.Auth.AccessKeys = map[string]string{"AKIDANY": "anysecret"}
		}
		cfg.Data = data
	}
}

// bufferedBodies sends each request body from a private buffer. smithy-go
// closes the request body as soon as the response headers arrive
// (transport/http/client.go, ClientHandler.Handle); when a server answers
// that fast — a streamed response whose first event is ready in a
// millisecond — net/http's write loop may still be making its final read
// of the body (the extra-bytes check after Content-Length), gets an error,
// and closes the connection under the stream ("use of closed network
// connection", aws/aws-sdk-go-v2#2737). A client-side race, not the
// server's: the test shields the stream from it.
type bufferedBodies struct{ next http.RoundTripper }

func (b bufferedBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return b.next.RoundTrip(r)
	}
	data, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(data))
	return b.next.RoundTrip(r2)
}

func TestGenAIBedrockRuntime(t *testing.T) {
	br, _, data, stop := startGenAI(t, nil)
	ctx := context.Background()
	const id = "meta.stories260k"
	const prompt = "Once upon a time"

	t.Run("InvokeModel", func(t *testing.T) {
		out, err := br.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
			ModelId: aws.String(id), ContentType: aws.String("application/json"),
			Body: []byte(`{"prompt":"Once upon a time","temperature":0,"max_gen_len":40}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Generation           string `json:"generation"`
			PromptTokenCount     int    `json:"prompt_token_count"`
			GenerationTokenCount int    `json:"generation_token_count"`
			StopReason           string `json:"stop_reason"`
		}
		if err := json.Unmarshal(out.Body, &resp); err != nil {
			t.Fatalf("%v: %s", err, out.Body)
		}
		if !strings.HasPrefix(storiesRef, prompt+resp.Generation) || len(resp.Generation) < 60 {
			t.Errorf("generation %q: not the reference continuation", resp.Generation)
		}
		if resp.GenerationTokenCount != 40 || resp.StopReason != "length" || resp.PromptTokenCount < 2 {
			t.Errorf("counts %+v: want 40 tokens, stop_reason length", resp)
		}
	})

	t.Run("InvokeModelWithResponseStream", func(t *testing.T) {
		out, err := br.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String(id), ContentType: aws.String("application/json"),
			Body: []byte(`{"prompt":"Once upon a time","temperature":0,"max_gen_len":40}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		var text strings.Builder
		var last map[string]any
		chunks := 0
		for ev := range stream.Events() {
			c, ok := ev.(*brtypes.ResponseStreamMemberChunk)
			if !ok {
				t.Fatalf("event %T", ev)
			}
			var m map[string]any
			if err := json.Unmarshal(c.Value.Bytes, &m); err != nil {
				t.Fatalf("chunk %q: %v", c.Value.Bytes, err)
			}
			g, _ := m["generation"].(string)
			text.WriteString(g)
			last = m
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if chunks < 10 || !strings.HasPrefix(storiesRef, prompt+text.String()) || text.Len() < 60 {
			t.Errorf("%d chunks, text %q", chunks, text.String())
		}
		metrics, _ := last["amazon-bedrock-invocationMetrics"].(map[string]any)
		if last["stop_reason"] != "length" || metrics == nil || metrics["outputTokenCount"] != float64(40) {
			t.Errorf("last chunk %v", last)
		}
	})

	t.Run("Converse", func(t *testing.T) {
		out, err := br.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId: aws.String(id),
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
				Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: prompt}}}},
			InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(40), Temperature: aws.Float32(0)},
		})
		if err != nil {
			t.Fatal(err)
		}
		msg := out.Output.(*brtypes.ConverseOutputMemberMessage).Value
		text := msg.Content[0].(*brtypes.ContentBlockMemberText).Value
		if msg.Role != brtypes.ConversationRoleAssistant || !strings.HasPrefix(storiesRef, prompt+text) || len(text) < 60 {
			t.Errorf("reply %s %q", msg.Role, text)
		}
		if out.StopReason != brtypes.StopReasonMaxTokens || *out.Usage.OutputTokens != 40 ||
			*out.Usage.TotalTokens != *out.Usage.InputTokens+40 || out.Metrics.LatencyMs == nil {
			t.Errorf("stop %s usage %+v", out.StopReason, out.Usage)
		}

		// A stop sequence ends the reply before it; stopReason says so.
		out, err = br.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId: aws.String(id),
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
				Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: prompt}}}},
			InferenceConfig:              &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(60), Temperature: aws.Float32(0), StopSequences: []string{"Lily"}},
			AdditionalModelRequestFields: nil,
		})
		if err != nil {
			t.Fatal(err)
		}
		text = out.Output.(*brtypes.ConverseOutputMemberMessage).Value.Content[0].(*brtypes.ContentBlockMemberText).Value
		if text != ", there was a little girl named " || out.StopReason != brtypes.StopReasonStopSequence {
			t.Errorf("with stop sequence: %q, %s", text, out.StopReason)
		}
	})

	t.Run("Converse system and top_k", func(t *testing.T) {
		// With the raw format the system text is a first line of the
		// prompt; top_k 1 is greedy whatever the temperature.
		out, err := br.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId: aws.String(id),
			System:  []brtypes.SystemContentBlock{&brtypes.SystemContentBlockMemberText{Value: "Once upon a time"}},
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
				Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "there was"}}}},
			InferenceConfig:              &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(10), Temperature: aws.Float32(1)},
			AdditionalModelRequestFields: document.NewLazyDocument(map[string]any{"top_k": 1}),
		})
		if err != nil {
			t.Fatal(err)
		}
		a := out.Output.(*brtypes.ConverseOutputMemberMessage).Value.Content[0].(*brtypes.ContentBlockMemberText).Value
		out, err = br.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId:         aws.String(id),
			Messages:        []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "Once upon a time\nthere was"}}}},
			InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(10), Temperature: aws.Float32(0)},
		})
		if err != nil {
			t.Fatal(err)
		}
		b := out.Output.(*brtypes.ConverseOutputMemberMessage).Value.Content[0].(*brtypes.ContentBlockMemberText).Value
		if a != b || a == "" {
			t.Errorf("system+top_k 1 gave %q; greedy on the joined prompt gave %q", a, b)
		}
	})

	t.Run("ConverseStream", func(t *testing.T) {
		out, err := br.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String(id),
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
				Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: prompt}}}},
			InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(40), Temperature: aws.Float32(0)},
		})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		var text strings.Builder
		var kinds []string
		var usage *brtypes.TokenUsage
		var stopReason brtypes.StopReason
		for ev := range stream.Events() {
			switch e := ev.(type) {
			case *brtypes.ConverseStreamOutputMemberMessageStart:
				kinds = append(kinds, "start:"+string(e.Value.Role))
			case *brtypes.ConverseStreamOutputMemberContentBlockDelta:
				text.WriteString(e.Value.Delta.(*brtypes.ContentBlockDeltaMemberText).Value)
			case *brtypes.ConverseStreamOutputMemberContentBlockStop:
				kinds = append(kinds, "blockStop")
			case *brtypes.ConverseStreamOutputMemberMessageStop:
				kinds = append(kinds, "stop")
				stopReason = e.Value.StopReason
			case *brtypes.ConverseStreamOutputMemberMetadata:
				kinds = append(kinds, "metadata")
				usage = e.Value.Usage
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(kinds, ",") != "start:assistant,blockStop,stop,metadata" {
			t.Errorf("events %v", kinds)
		}
		if !strings.HasPrefix(storiesRef, prompt+text.String()) || text.Len() < 60 {
			t.Errorf("streamed text %q", text.String())
		}
		if stopReason != brtypes.StopReasonMaxTokens || usage == nil || *usage.OutputTokens != 40 {
			t.Errorf("stop %s usage %+v", stopReason, usage)
		}
	})

	t.Run("errors", func(t *testing.T) {
		user := []brtypes.Message{{Role: brtypes.ConversationRoleUser,
			Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: prompt}}}}
		cases := []struct {
			name, code, msg string
			call            func() error
		}{
			{"unknown model", "ValidationException", "The provided model identifier is invalid.", func() error {
				_, err := br.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("meta.nope"),
					ContentType: aws.String("application/json"), Body: []byte(`{"prompt":"x"}`)})
				return err
			}},
			{"unknown model converse", "ValidationException", "The provided model identifier is invalid.", func() error {
				_, err := br.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("meta.nope"), Messages: user})
				return err
			}},
			{"temperature out of range", "ValidationException", "#/temperature: 1.5 is not in range [0, 1]", func() error {
				_, err := br.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(id),
					ContentType: aws.String("application/json"), Body: []byte(`{"prompt":"x","temperature":1.5}`)})
				return err
			}},
			{"missing prompt", "ValidationException", "required key [prompt] not found", func() error {
				_, err := br.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(id),
					ContentType: aws.String("application/json"), Body: []byte(`{"max_gen_len":5}`)})
				return err
			}},
			{"max tokens over context", "ValidationException", "exceeds the model limit of 2048", func() error {
				_, err := br.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(id), Messages: user,
					InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(5000)}})
				return err
			}},
			{"topP out of range", "ValidationException", "inferenceConfig.topP", func() error {
				_, err := br.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(id), Messages: user,
					InferenceConfig: &brtypes.InferenceConfiguration{TopP: aws.Float32(2)}})
				return err
			}},
			{"starts with assistant", "ValidationException", "must start with a user message", func() error {
				_, err := br.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(id),
					Messages: []brtypes.Message{{Role: brtypes.ConversationRoleAssistant,
						Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "hi"}}}}})
				return err
			}},
			{"not alternating", "ValidationException", "must alternate between user and assistant", func() error {
				_, err := br.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(id),
					Messages: append(append([]brtypes.Message{}, user...), user...)})
				return err
			}},
			{"prompt longer than the context", "ValidationException", "the context holds 2048", func() error {
				long := strings.Repeat("Once upon a time ", 600)
				_, err := br.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(id),
					ContentType: aws.String("application/json"), Body: []byte(`{"prompt":"` + long + `","max_gen_len":5}`)})
				return err
			}},
			{"unknown additional field", "ValidationException", "extraneous key [top_q]", func() error {
				_, err := br.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(id), Messages: user,
					AdditionalModelRequestFields: document.NewLazyDocument(map[string]any{"top_q": 3})})
				return err
			}},
			{"stream unknown model", "ValidationException", "The provided model identifier is invalid.", func() error {
				_, err := br.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("meta.nope"), Messages: user})
				return err
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || !strings.Contains(ae.ErrorMessage(), tc.msg) {
					t.Fatalf("got %v; want %s containing %q", err, tc.code, tc.msg)
				}
			})
		}
	})

	// The ledger, read after shutdown: every successful call above was
	// metered under bedrock-on-demand with its tokens and caller.
	stop()
	invs := readLedger(t, data)
	var n, out40 int
	for _, v := range invs {
		if v.Mode != "bedrock-on-demand" {
			continue
		}
		if v.Resource != "meta.stories260k" || v.Caller != "AKIDANY" || v.InputTokens < 2 || v.Status != 200 {
			t.Errorf("ledger row %+v", v)
		}
		n++
		if v.OutputTokens == 40 {
			out40++
		}
	}
	if n != 7 || out40 != 4 {
		t.Errorf("ledger: %d bedrock-on-demand rows (%d with 40 output tokens); want 7 (4)", n, out40)
	}
	// The pool started from zero: its instance was recorded, and stopped.
	insts, err := readLedgerInstances(t, data)
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, in := range insts {
		if in.Mode == "bedrock-on-demand" && in.Resource == "meta.stories260k" && !in.End.IsZero() {
			started++
		}
	}
	if started < 1 {
		t.Errorf("ledger instances %+v: want a stopped bedrock-on-demand instance", insts)
	}
}

// readLedgerInstances returns a stopped server's instance records.
func readLedgerInstances(t *testing.T, data string) ([]meter.InstanceRecord, error) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "catalog.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ledger, err := meter.NewLedger(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return ledger.Instances(context.Background(), time.Time{}, time.Time{})
}

// readLedger opens a stopped server's ledger and returns every invocation.
func readLedger(t *testing.T, data string) []meter.Invocation {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ledger, err := meter.NewLedger(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	invs, err := ledger.Invocations(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return invs
}

// A foundation model whose file cannot be read stops start-up with an
// error naming the model.
func TestGenAIBadModelFile(t *testing.T) {
	cfg := testConfig(t)
	cfg.FoundationModels = []config.FoundationModel{{ID: "meta.missing", Path: filepath.Join(t.TempDir(), "none.gguf")}}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = srv.Shutdown(context.Background())
		t.Fatal("server started with a missing model file")
	}
	if !strings.Contains(err.Error(), `foundation model "meta.missing"`) {
		t.Errorf("error %v: does not name the model", err)
	}
}
