package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"

	"github.com/inferbox/inferbox/internal/config"
)

// Foundation-model ids whose provider prefix selects the Titan Text and
// Mistral bodies; both serve the stories260K file, as meta.stories260k.
const (
	titanID   = "amazon.titan-text-lite-v1"
	mistralID = "mistral.mistral-7b-instruct-v0:2"
)

func startBodies(t *testing.T) (*bedrockruntime.Client, string) {
	t.Helper()
	model := storiesPath(t)
	br, url, _, _ := startGenAI(t, func(cfg *config.Config) {
		cfg.FoundationModels = append(cfg.FoundationModels,
			config.FoundationModel{ID: titanID, Path: model, ChatFormat: "raw"},
			config.FoundationModel{ID: mistralID, Path: model, ChatFormat: "raw"})
	})
	return br, url
}

// invokeJSON calls InvokeModel and decodes the reply into v, returning the
// HTTP response headers.
func invokeJSON(t *testing.T, br *bedrockruntime.Client, id, body string, v any) map[string]string {
	t.Helper()
	out, err := br.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
		ModelId: aws.String(id), ContentType: aws.String("application/json"), Body: []byte(body)})
	if err != nil {
		t.Fatalf("%s %s: %v", id, body, err)
	}
	if err := json.Unmarshal(out.Body, v); err != nil {
		t.Fatalf("%v: %s", err, out.Body)
	}
	raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response)
	if !ok {
		t.Fatalf("no raw response")
	}
	h := map[string]string{}
	for _, k := range []string{"X-Amzn-Bedrock-Input-Token-Count", "X-Amzn-Bedrock-Output-Token-Count", "X-Amzn-Bedrock-Invocation-Latency"} {
		h[k] = raw.Header.Get(k)
	}
	return h
}

// streamChunks calls InvokeModelWithResponseStream and returns the
// decoded chunks.
func streamChunks(t *testing.T, br *bedrockruntime.Client, id, body string) []map[string]any {
	t.Helper()
	out, err := br.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String(id), ContentType: aws.String("application/json"), Body: []byte(body)})
	if err != nil {
		t.Fatalf("%s %s: %v", id, body, err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var chunks []map[string]any
	for ev := range stream.Events() {
		c, ok := ev.(*brtypes.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("event %T", ev)
		}
		var m map[string]any
		if err := json.Unmarshal(c.Value.Bytes, &m); err != nil {
			t.Fatalf("chunk %q: %v", c.Value.Bytes, err)
		}
		chunks = append(chunks, m)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return chunks
}

type titanReply struct {
	InputTextTokenCount int `json:"inputTextTokenCount"`
	Results             []struct {
		TokenCount       int    `json:"tokenCount"`
		OutputText       string `json:"outputText"`
		CompletionReason string `json:"completionReason"`
	} `json:"results"`
}

type mistralReply struct {
	Outputs []struct {
		Text       string `json:"text"`
		StopReason string `json:"stop_reason"`
	} `json:"outputs"`
}

func TestGenAIBodies(t *testing.T) {
	br, _ := startBodies(t)
	const prompt = "Once upon a time"

	// The Meta body's greedy generation is what the others must return.
	var meta struct {
		Generation           string `json:"generation"`
		PromptTokenCount     int    `json:"prompt_token_count"`
		GenerationTokenCount int    `json:"generation_token_count"`
	}
	invokeJSON(t, br, "meta.stories260k", `{"prompt":"Once upon a time","temperature":0,"max_gen_len":40}`, &meta)
	if len(meta.Generation) < 60 || !strings.HasPrefix(storiesRef, prompt+meta.Generation) {
		t.Fatalf("meta generation %q", meta.Generation)
	}
	checkHeaders := func(t *testing.T, h map[string]string, in, out int) {
		t.Helper()
		lat, err := strconv.Atoi(h["X-Amzn-Bedrock-Invocation-Latency"])
		if h["X-Amzn-Bedrock-Input-Token-Count"] != strconv.Itoa(in) || h["X-Amzn-Bedrock-Output-Token-Count"] != strconv.Itoa(out) || err != nil || lat < 0 {
			t.Errorf("usage headers %v, want %d in, %d out", h, in, out)
		}
	}

	t.Run("titan", func(t *testing.T) {
		var r titanReply
		h := invokeJSON(t, br, titanID, `{"inputText":"Once upon a time","textGenerationConfig":{"temperature":0,"maxTokenCount":40}}`, &r)
		if len(r.Results) != 1 || r.Results[0].OutputText != meta.Generation {
			t.Fatalf("titan reply %+v, want the meta generation %q", r, meta.Generation)
		}
		if res := r.Results[0]; res.TokenCount != 40 || res.CompletionReason != "LENGTH" || r.InputTextTokenCount != meta.PromptTokenCount {
			t.Errorf("titan counts %+v (input %d), want 40 tokens, LENGTH, input %d", res, r.InputTextTokenCount, meta.PromptTokenCount)
		}
		checkHeaders(t, h, meta.PromptTokenCount, 40)

		invokeJSON(t, br, titanID, `{"inputText":"Once upon a time","textGenerationConfig":{"temperature":0,"maxTokenCount":60,"stopSequences":["Lily"]}}`, &r)
		if res := r.Results[0]; res.OutputText != ", there was a little girl named " || res.CompletionReason != "STOP_CRITERIA_MET" {
			t.Errorf("titan with a stop sequence: %+v", res)
		}
	})

	t.Run("titan stream", func(t *testing.T) {
		chunks := streamChunks(t, br, titanID, `{"inputText":"Once upon a time","textGenerationConfig":{"temperature":0,"maxTokenCount":40}}`)
		var text strings.Builder
		for i, c := range chunks {
			s, _ := c["outputText"].(string)
			text.WriteString(s)
			if i < len(chunks)-1 && (c["completionReason"] != nil || c["index"] != float64(0)) {
				t.Errorf("chunk %d: %v", i, c)
			}
		}
		if len(chunks) < 10 || text.String() != meta.Generation {
			t.Errorf("%d chunks join to %q, want %q", len(chunks), text.String(), meta.Generation)
		}
		last := chunks[len(chunks)-1]
		metrics, _ := last["amazon-bedrock-invocationMetrics"].(map[string]any)
		if last["completionReason"] != "LENGTH" || last["totalOutputTextTokenCount"] != float64(40) ||
			last["inputTextTokenCount"] != float64(meta.PromptTokenCount) || metrics == nil ||
			metrics["outputTokenCount"] != float64(40) || metrics["inputTokenCount"] != float64(meta.PromptTokenCount) {
			t.Errorf("last chunk %v", last)
		}
	})

	t.Run("mistral", func(t *testing.T) {
		var r mistralReply
		h := invokeJSON(t, br, mistralID, `{"prompt":"Once upon a time","temperature":0,"max_tokens":40}`, &r)
		if len(r.Outputs) != 1 || r.Outputs[0].Text != meta.Generation || r.Outputs[0].StopReason != "length" {
			t.Fatalf("mistral reply %+v, want the meta generation %q, length", r, meta.Generation)
		}
		checkHeaders(t, h, meta.PromptTokenCount, 40)
		// A literal BOS at the start of the prompt is the one the engine adds.
		h = invokeJSON(t, br, mistralID, `{"prompt":"<s>Once upon a time","temperature":0,"max_tokens":60,"stop":["Lily"]}`, &r)
		if o := r.Outputs[0]; o.Text != ", there was a little girl named " || o.StopReason != "stop" {
			t.Errorf("mistral with a stop sequence: %+v", o)
		}
		if h["X-Amzn-Bedrock-Input-Token-Count"] != strconv.Itoa(meta.PromptTokenCount) {
			t.Errorf("a prompt with <s>: %s input tokens, want %d", h["X-Amzn-Bedrock-Input-Token-Count"], meta.PromptTokenCount)
		}
	})

	t.Run("mistral stream", func(t *testing.T) {
		chunks := streamChunks(t, br, mistralID, `{"prompt":"Once upon a time","temperature":0,"max_tokens":40}`)
		var text strings.Builder
		var reasons []any
		for _, c := range chunks {
			outs, _ := c["outputs"].([]any)
			if len(outs) != 1 {
				t.Fatalf("chunk %v", c)
			}
			o := outs[0].(map[string]any)
			s, _ := o["text"].(string)
			text.WriteString(s)
			reasons = append(reasons, o["stop_reason"])
		}
		if len(chunks) < 10 || text.String() != meta.Generation {
			t.Errorf("%d chunks join to %q, want %q", len(chunks), text.String(), meta.Generation)
		}
		last := chunks[len(chunks)-1]
		metrics, _ := last["amazon-bedrock-invocationMetrics"].(map[string]any)
		if reasons[len(reasons)-1] != "length" || reasons[0] != nil || metrics == nil || metrics["outputTokenCount"] != float64(40) {
			t.Errorf("stop reasons %v, last chunk %v", reasons, last)
		}
	})

	t.Run("validation", func(t *testing.T) {
		const pre, post = "Malformed input request: ", ", please reformat your input and try again."
		for _, tc := range []struct {
			name, id, body, want string
		}{
			{"titan extraneous key", titanID, `{"inputText":"x","foo":1}`, pre + "#: extraneous key [foo] is not permitted" + post},
			{"titan nested extraneous key", titanID, `{"inputText":"x","textGenerationConfig":{"top_p":0.5}}`,
				pre + "#/textGenerationConfig: extraneous key [top_p] is not permitted" + post},
			{"titan missing inputText", titanID, `{"textGenerationConfig":{}}`, pre + "#: required key [inputText] not found" + post},
			{"titan temperature", titanID, `{"inputText":"x","textGenerationConfig":{"temperature":1.5}}`,
				pre + "#/textGenerationConfig/temperature: 1.5 is not in range [0, 1]" + post},
			{"titan topP", titanID, `{"inputText":"x","textGenerationConfig":{"topP":-0.1}}`,
				pre + "#/textGenerationConfig/topP: -0.1 is not in range [0, 1]" + post},
			{"titan maxTokenCount", titanID, `{"inputText":"x","textGenerationConfig":{"maxTokenCount":4096}}`,
				pre + "#/textGenerationConfig/maxTokenCount: 4096 is not in range [0, 2048]" + post},
			{"titan stopSequences type", titanID, `{"inputText":"x","textGenerationConfig":{"stopSequences":"User:"}}`,
				pre + "#/textGenerationConfig/stopSequences: expected type: JSONArray, found: String" + post},
			{"mistral extraneous key", mistralID, `{"prompt":"x","max_gen_len":5}`, pre + "#: extraneous key [max_gen_len] is not permitted" + post},
			{"mistral top_k high", mistralID, `{"prompt":"x","top_k":201}`, pre + "#/top_k: 201 is not in range [1, 200]" + post},
			{"mistral top_k low", mistralID, `{"prompt":"x","top_k":0}`, pre + "#/top_k: 0 is not in range [1, 200]" + post},
			{"mistral top_p", mistralID, `{"prompt":"x","top_p":1.2}`, pre + "#/top_p: 1.2 is not in range [0, 1]" + post},
			{"mistral temperature", mistralID, `{"prompt":"x","temperature":2}`, pre + "#/temperature: 2 is not in range [0, 1]" + post},
			{"mistral max_tokens", mistralID, `{"prompt":"x","max_tokens":0}`, pre + "#/max_tokens: 0 is not in range [1, 2048]" + post},
			{"mistral two violations", mistralID, `{"top_k":300}`, pre + "2 schema violations found, please reformat your input and try again. " +
				"#: required key [prompt] not found, #/top_k: 300 is not in range [1, 200]"},
			{"not JSON", mistralID, `{"prompt":`, "Malformed input request, please reformat your input and try again."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := br.InvokeModel(context.Background(), &bedrockruntime.InvokeModelInput{
					ModelId: aws.String(tc.id), ContentType: aws.String("application/json"), Body: []byte(tc.body)})
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || ae.ErrorMessage() != tc.want {
					t.Errorf("got %v\nwant ValidationException %q", err, tc.want)
				}
				_, err = br.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
					ModelId: aws.String(tc.id), ContentType: aws.String("application/json"), Body: []byte(tc.body)})
				if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || ae.ErrorMessage() != tc.want {
					t.Errorf("stream: got %v\nwant ValidationException %q", err, tc.want)
				}
			})
		}
	})
}

// checkLogprobs checks one chat choice's logprobs against its content:
// finite, non-positive values; alternatives most likely first with
// probabilities summing to at most 1; under greedy decoding the sampled
// token is the most likely one; bytes are the token's.
func checkLogprobs(t *testing.T, lps []openai.ChatCompletionTokenLogprob, top int, greedy bool) {
	t.Helper()
	for i, lp := range lps {
		if math.IsNaN(lp.Logprob) || math.IsInf(lp.Logprob, 0) || lp.Logprob > 0 {
			t.Fatalf("token %d %q: logprob %v", i, lp.Token, lp.Logprob)
		}
		if string(bytesOf(lp.Bytes)) != lp.Token {
			t.Errorf("token %d %q: bytes %v", i, lp.Token, lp.Bytes)
		}
		if len(lp.TopLogprobs) != top {
			t.Fatalf("token %d: %d alternatives, want %d", i, len(lp.TopLogprobs), top)
		}
		var sum float64
		for j, a := range lp.TopLogprobs {
			if math.IsNaN(a.Logprob) || a.Logprob > 0 || (j > 0 && a.Logprob > lp.TopLogprobs[j-1].Logprob) {
				t.Errorf("token %d: alternatives %+v", i, lp.TopLogprobs)
			}
			sum += math.Exp(a.Logprob)
		}
		if sum > 1+1e-9 {
			t.Errorf("token %d: alternatives' probabilities sum to %v", i, sum)
		}
		if greedy && top > 0 && (lp.Logprob != lp.TopLogprobs[0].Logprob || lp.Token != lp.TopLogprobs[0].Token) {
			t.Errorf("token %d %q (%v): greedy, yet the most likely is %+v", i, lp.Token, lp.Logprob, lp.TopLogprobs[0])
		}
	}
}

func bytesOf(b []int64) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = byte(v)
	}
	return out
}

func joinTokens(lps []openai.ChatCompletionTokenLogprob) string {
	var s strings.Builder
	for _, lp := range lps {
		s.WriteString(lp.Token)
	}
	return s.String()
}

func TestGenAILogprobs(t *testing.T) {
	_, url, _, _ := startGenAI(t, nil)
	ctx := context.Background()
	const id = "meta.stories260k"
	client := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("anysecret"), option.WithMaxRetries(0))
	user := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Once upon a time")}
	greedy := openai.ChatCompletionNewParams{Model: id, Messages: user, Temperature: openai.Float(0),
		MaxCompletionTokens: openai.Int(30), Logprobs: openai.Bool(true), TopLogprobs: openai.Int(5)}

	var want []openai.ChatCompletionTokenLogprob
	t.Run("chat greedy", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, greedy)
		if err != nil {
			t.Fatal(err)
		}
		c := resp.Choices[0]
		want = c.Logprobs.Content
		if len(want) != 30 || joinTokens(want) != c.Message.Content {
			t.Fatalf("%d tokens join to %q, content %q", len(want), joinTokens(want), c.Message.Content)
		}
		checkLogprobs(t, want, 5, true)
	})

	t.Run("chat stream", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, greedy)
		var got []openai.ChatCompletionTokenLogprob
		var text strings.Builder
		for stream.Next() {
			for _, ch := range stream.Current().Choices {
				text.WriteString(ch.Delta.Content)
				got = append(got, ch.Logprobs.Content...)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || joinTokens(got) != text.String() {
			t.Fatalf("streamed %d tokens join to %q, text %q", len(got), joinTokens(got), text.String())
		}
		for i := range got {
			if got[i].Token != want[i].Token || got[i].Logprob != want[i].Logprob || len(got[i].TopLogprobs) != 5 {
				t.Errorf("token %d: streamed %+v, unstreamed %+v", i, got[i], want[i])
			}
		}
	})

	t.Run("chat seeded repeat", func(t *testing.T) {
		p := openai.ChatCompletionNewParams{Model: id, Messages: user, Temperature: openai.Float(1.5), Seed: openai.Int(11),
			MaxCompletionTokens: openai.Int(30), Logprobs: openai.Bool(true), TopLogprobs: openai.Int(3)}
		a, err := client.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := client.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		la, lb := a.Choices[0].Logprobs.Content, b.Choices[0].Logprobs.Content
		checkLogprobs(t, la, 3, false)
		if joinTokens(la) != a.Choices[0].Message.Content || len(la) != len(lb) {
			t.Fatalf("tokens %q, content %q; %d vs %d tokens", joinTokens(la), a.Choices[0].Message.Content, len(la), len(lb))
		}
		for i := range la {
			if la[i].Token != lb[i].Token || la[i].Logprob != lb[i].Logprob {
				t.Errorf("token %d: %+v then %+v", i, la[i], lb[i])
			}
		}
	})

	t.Run("chat stop", func(t *testing.T) {
		// " Lily" is a token of its own: the tokens end where the text does.
		p := greedy
		p.Stop = openai.ChatCompletionNewParamsStopUnion{OfString: openai.String(" Lily")}
		resp, err := client.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		c := resp.Choices[0]
		if c.Message.Content != ", there was a little girl named" || joinTokens(c.Logprobs.Content) != c.Message.Content {
			t.Errorf("content %q, tokens %q", c.Message.Content, joinTokens(c.Logprobs.Content))
		}
		// "Lily" cuts " Lily" after its space: that token gave text, so it
		// stays; the tokens after the cut do not.
		p.Stop = openai.ChatCompletionNewParamsStopUnion{OfString: openai.String("Lily")}
		resp, err = client.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		c = resp.Choices[0]
		lps := c.Logprobs.Content
		if c.Message.Content != ", there was a little girl named " || len(lps) == 0 || lps[len(lps)-1].Token != " Lily" ||
			joinTokens(lps[:len(lps)-1])+" " != c.Message.Content {
			t.Errorf("content %q, tokens %q", c.Message.Content, joinTokens(lps))
		}
	})

	t.Run("completions", func(t *testing.T) {
		p := openai.CompletionNewParams{Model: id, Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
			Temperature: openai.Float(0), MaxTokens: openai.Int(20), Logprobs: openai.Int(3)}
		resp, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		c := resp.Choices[0]
		lp := c.Logprobs
		if len(lp.Tokens) != 20 || strings.Join(lp.Tokens, "") != c.Text || len(lp.TokenLogprobs) != 20 || len(lp.TopLogprobs) != 20 || len(lp.TextOffset) != 20 {
			t.Fatalf("logprobs %+v for text %q", lp, c.Text)
		}
		off := 0
		for i, tok := range lp.Tokens {
			if lp.TextOffset[i] != int64(off) {
				t.Errorf("token %d: text_offset %d, want %d", i, lp.TextOffset[i], off)
			}
			off += len([]rune(tok))
			best := math.Inf(-1)
			for _, v := range lp.TopLogprobs[i] {
				best = max(best, v)
			}
			if n := len(lp.TopLogprobs[i]); n < 3 || n > 4 || lp.TokenLogprobs[i] != best || lp.TopLogprobs[i][tok] != best || best > 0 {
				t.Errorf("token %d %q: logprob %v, alternatives %v", i, tok, lp.TokenLogprobs[i], lp.TopLogprobs[i])
			}
		}
		// Streamed: the same tokens, offsets running on across chunks.
		stream := client.Completions.NewStreaming(ctx, p)
		var toks []string
		var offs []int64
		for stream.Next() {
			for _, ch := range stream.Current().Choices {
				toks = append(toks, ch.Logprobs.Tokens...)
				offs = append(offs, ch.Logprobs.TextOffset...)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(toks, lp.Tokens) || !slices.Equal(offs, lp.TextOffset) {
			t.Errorf("streamed tokens %q offsets %v, want %q %v", toks, offs, lp.Tokens, lp.TextOffset)
		}
	})

	t.Run("errors", func(t *testing.T) {
		noLogprobs := greedy
		noLogprobs.Logprobs = param.Opt[bool]{}
		tooMany := greedy
		tooMany.TopLogprobs = openai.Int(21)
		for _, tc := range []struct {
			name, param, code, msg string
			call                   func() error
		}{
			{"top_logprobs without logprobs", "top_logprobs", "", "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.", func() error {
				_, err := client.Chat.Completions.New(ctx, noLogprobs)
				return err
			}},
			{"top_logprobs 21", "top_logprobs", "integer_above_max_value", "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got 21 instead.", func() error {
				_, err := client.Chat.Completions.New(ctx, tooMany)
				return err
			}},
			{"completions logprobs 6", "logprobs", "integer_above_max_value", "Invalid 'logprobs': integer above maximum value. Expected a value <= 5, but got 6 instead.", func() error {
				_, err := client.Completions.New(ctx, openai.CompletionNewParams{Model: id, Logprobs: openai.Int(6),
					Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")}})
				return err
			}},
			{"completions logprobs -1", "logprobs", "integer_below_min_value", "Invalid 'logprobs': integer below minimum value. Expected a value >= 0, but got -1 instead.", func() error {
				_, err := client.Completions.New(ctx, openai.CompletionNewParams{Model: id, Logprobs: openai.Int(-1),
					Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")}})
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var oe *openai.Error
				err := tc.call()
				if !errors.As(err, &oe) || oe.StatusCode != 400 || oe.Message != tc.msg || oe.Param != tc.param || oe.Code != tc.code || oe.Type != "invalid_request_error" {
					t.Errorf("got %v, want 400 %q (param %s, code %q)", err, tc.msg, tc.param, tc.code)
				}
			})
		}
	})
}
