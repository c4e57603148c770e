package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	bdtypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/smithy-go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func TestGenAIOpenAI(t *testing.T) {
	_, url, data, stop := startGenAI(t, nil)
	ctx := context.Background()
	const id = "meta.stories260k"
	const prompt = "Once upon a time"
	client := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("anysecret"), option.WithMaxRetries(0))
	user := []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != id || page.Data[0].OwnedBy != "meta" {
			t.Fatalf("models %+v", page.Data)
		}
		var ext struct {
			ChatFormat    string `json:"chat_format"`
			ContextLength int    `json:"context_length"`
		}
		if err := json.Unmarshal([]byte(page.Data[0].RawJSON()), &ext); err != nil || ext.ChatFormat != "raw" || ext.ContextLength != 2048 {
			t.Errorf("model description %s", page.Data[0].RawJSON())
		}
	})

	t.Run("chat", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: id, Messages: user, Temperature: openai.Float(0), MaxCompletionTokens: openai.Int(40),
		})
		if err != nil {
			t.Fatal(err)
		}
		text := resp.Choices[0].Message.Content
		if !strings.HasPrefix(storiesRef, prompt+text) || len(text) < 60 || resp.Choices[0].FinishReason != "length" {
			t.Errorf("reply %q finish %s", text, resp.Choices[0].FinishReason)
		}
		if resp.Usage.CompletionTokens != 40 || resp.Usage.TotalTokens != resp.Usage.PromptTokens+40 || resp.Object != "chat.completion" {
			t.Errorf("usage %+v object %s", resp.Usage, resp.Object)
		}
	})

	t.Run("chat stop n seed", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: id, Messages: user, Temperature: openai.Float(0), MaxTokens: openai.Int(60),
			Stop: openai.ChatCompletionNewParamsStopUnion{OfString: openai.String("Lily")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if c := resp.Choices[0]; c.Message.Content != ", there was a little girl named " || c.FinishReason != "stop" {
			t.Errorf("with stop: %q %s", c.Message.Content, c.FinishReason)
		}
		// Sampled with a seed: n choices, and the same seed gives the same choices.
		params := openai.ChatCompletionNewParams{Model: id, Messages: user, Temperature: openai.Float(1),
			MaxTokens: openai.Int(20), N: openai.Int(2), Seed: openai.Int(7)}
		a, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		b, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Choices) != 2 || a.Choices[1].Index != 1 || a.Usage.CompletionTokens != 40 {
			t.Fatalf("n=2: %d choices, usage %+v", len(a.Choices), a.Usage)
		}
		for i := range 2 {
			if a.Choices[i].Message.Content != b.Choices[i].Message.Content {
				t.Errorf("seeded choice %d differs: %q vs %q", i, a.Choices[i].Message.Content, b.Choices[i].Message.Content)
			}
		}
	})

	t.Run("chat stream", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: id, Messages: user, Temperature: openai.Float(0), MaxTokens: openai.Int(40),
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		var text strings.Builder
		var finish string
		var usageChunk *openai.ChatCompletionChunk
		n := 0
		for stream.Next() {
			c := stream.Current()
			n++
			if len(c.Choices) == 0 {
				usageChunk = &c
				continue
			}
			text.WriteString(c.Choices[0].Delta.Content)
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(storiesRef, prompt+text.String()) || text.Len() < 60 || finish != "length" || n < 10 {
			t.Errorf("%d chunks, text %q, finish %q", n, text.String(), finish)
		}
		if usageChunk == nil || usageChunk.Usage.CompletionTokens != 40 {
			t.Errorf("usage chunk %+v", usageChunk)
		}
	})

	t.Run("completions", func(t *testing.T) {
		resp, err := client.Completions.New(ctx, openai.CompletionNewParams{
			Model: id, Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			Temperature: openai.Float(0), MaxTokens: openai.Int(40),
		})
		if err != nil {
			t.Fatal(err)
		}
		if text := resp.Choices[0].Text; !strings.HasPrefix(storiesRef, prompt+text) || len(text) < 60 || resp.Usage.CompletionTokens != 40 {
			t.Errorf("completion %q usage %+v", text, resp.Usage)
		}
		stream := client.Completions.NewStreaming(ctx, openai.CompletionNewParams{
			Model: id, Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			Temperature: openai.Float(0), MaxTokens: openai.Int(40),
		})
		var text strings.Builder
		for stream.Next() {
			if c := stream.Current(); len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Text)
			}
		}
		if err := stream.Err(); err != nil || text.String() != resp.Choices[0].Text {
			t.Errorf("streamed %q, err %v; want %q", text.String(), err, resp.Choices[0].Text)
		}
	})

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name, param, code string
			status            int
			params            openai.ChatCompletionNewParams
		}{
			{"unknown model", "model", "model_not_found", 404, openai.ChatCompletionNewParams{Model: "nope", Messages: user}},
			{"temperature", "temperature", "decimal_above_max_value", 400, openai.ChatCompletionNewParams{Model: id, Messages: user, Temperature: openai.Float(2.5)}},
			{"five stops", "stop", "array_above_max_length", 400, openai.ChatCompletionNewParams{Model: id, Messages: user,
				Stop: openai.ChatCompletionNewParamsStopUnion{OfStringArray: []string{"a", "b", "c", "d", "e"}}}},
			{"max tokens over context", "max_tokens", "invalid_value", 400, openai.ChatCompletionNewParams{Model: id, Messages: user, MaxTokens: openai.Int(5000)}},
			{"n", "n", "integer_out_of_range", 400, openai.ChatCompletionNewParams{Model: id, Messages: user, N: openai.Int(0)}},
			{"no messages", "messages", "empty_array", 400, openai.ChatCompletionNewParams{Model: id, Messages: []openai.ChatCompletionMessageParamUnion{}}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := client.Chat.Completions.New(ctx, tc.params)
				var ae *openai.Error
				if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Param != tc.param || ae.Code != tc.code || ae.Message == "" {
					t.Fatalf("got %v; want %d %s/%s", err, tc.status, tc.param, tc.code)
				}
			})
		}
		// A prompt longer than the context is refused before the stream starts.
		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: id, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("Once upon a time ", 600))},
		})
		for stream.Next() {
			t.Errorf("chunk %s", stream.Current().RawJSON())
		}
		var se *openai.Error
		if err := stream.Err(); !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.Message, "the context holds 2048") {
			t.Errorf("long prompt stream: %v", err)
		}
		// A bad key is refused with 401 invalid_api_key; id:secret is accepted.
		bad := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("wrong"), option.WithMaxRetries(0))
		_, err := bad.Models.List(ctx)
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Code != "invalid_api_key" {
			t.Errorf("bad key: %v", err)
		}
		req, _ := http.NewRequest("GET", url+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer AKIDANY:anysecret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), id) {
			t.Errorf("id:secret key: %s %s", resp.Status, body)
		}
	})

	stop()
	var n int
	for _, v := range readLedger(t, data) {
		if v.Mode == "bedrock-on-demand" && v.Variant == "openai" && v.Caller == "AKIDANY" && v.OutputTokens > 0 {
			n++
		}
	}
	// chat 1, stop 1, n=2 twice (4), stream 1, completions 2.
	if n != 9 {
		t.Errorf("ledger: %d openai rows; want 9", n)
	}
}

// TestGenAICatalog checks ListFoundationModels and GetFoundationModel
// with the AWS SDK's bedrock client.
func TestGenAICatalog(t *testing.T) {
	_, url, _, _ := startGenAI(t, nil)
	ctx := context.Background()
	c := newClients(url, "AKIDANY", "anysecret")
	bc := bedrock.NewFromConfig(c.cfg, func(o *bedrock.Options) { o.BaseEndpoint = aws.String(url) })
	list, err := bc.ListFoundationModels(ctx, &bedrock.ListFoundationModelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ModelSummaries) != 1 {
		t.Fatalf("list: %+v", list.ModelSummaries)
	}
	s := list.ModelSummaries[0]
	if *s.ModelId != "meta.stories260k" || *s.ProviderName != "Meta" ||
		*s.ModelArn != "arn:aws:bedrock:us-east-1::foundation-model/meta.stories260k" ||
		!slices.Equal(s.InferenceTypesSupported, []bdtypes.InferenceType{bdtypes.InferenceTypeOnDemand, bdtypes.InferenceTypeProvisioned}) ||
		len(s.OutputModalities) != 1 || s.OutputModalities[0] != bdtypes.ModelModalityText || !*s.ResponseStreamingSupported {
		t.Errorf("summary %+v", s)
	}
	other, err := bc.ListFoundationModels(ctx, &bedrock.ListFoundationModelsInput{ByProvider: aws.String("amazon")})
	if err != nil || len(other.ModelSummaries) != 0 {
		t.Errorf("byProvider=amazon: %v %v", other, err)
	}
	got, err := bc.GetFoundationModel(ctx, &bedrock.GetFoundationModelInput{ModelIdentifier: aws.String("meta.stories260k")})
	if err != nil {
		t.Fatal(err)
	}
	if *got.ModelDetails.ModelId != "meta.stories260k" || got.ModelDetails.ModelLifecycle.Status != bdtypes.FoundationModelLifecycleStatusActive {
		t.Errorf("get: %+v", got.ModelDetails)
	}
	// The chat format in use is in the raw description (an extension).
	req, _ := http.NewRequest("GET", url+"/foundation-models/meta.stories260k", nil)
	creds, _ := c.cfg.Credentials.Retrieve(ctx)
	empty := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "bedrock", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"inferboxChatFormat":"raw"`) {
		t.Errorf("description %s", body)
	}
	_, err = bc.GetFoundationModel(ctx, &bedrock.GetFoundationModelInput{ModelIdentifier: aws.String("meta.nope")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Errorf("get unknown: %v", err)
	}
}
