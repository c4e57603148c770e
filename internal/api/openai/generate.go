package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/inferbox/inferbox/internal/api/streamwrite"
	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

// sampling are the request fields both endpoints share.
type sampling struct {
	Model               string          `json:"model"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"` // vLLM's extension
	N                   *int            `json:"n"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	Logprobs            json.RawMessage `json:"logprobs"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func intRangeErr(param string, v, lo, hi int) error {
	if v < lo {
		return &apiError{status: 400, typ: "invalid_request_error", param: param, code: "integer_below_min_value",
			msg: fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= %d, but got %d instead.", param, lo, v)}
	}
	if v > hi {
		return &apiError{status: 400, typ: "invalid_request_error", param: param, code: "integer_above_max_value",
			msg: fmt.Sprintf("Invalid '%s': integer above maximum value. Expected a value <= %d, but got %d instead.", param, hi, v)}
	}
	return nil
}

func typeErr(param, want, got string) error {
	return &apiError{status: 400, typ: "invalid_request_error", param: param, code: "invalid_type",
		msg: fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, want, got)}
}

// jsonKind names a JSON value's type as OpenAI's type errors do.
func jsonKind(raw json.RawMessage) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '"':
		return "a string"
	case raw[0] == '[':
		return "an array"
	case raw[0] == '{':
		return "an object"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	case raw[0] == 'n':
		return "null"
	}
	return "a number"
}

func rangeErr(param string, v, lo, hi float64) error {
	if v < lo {
		return &apiError{status: 400, typ: "invalid_request_error", param: param, code: "decimal_below_min_value",
			msg: fmt.Sprintf("Invalid '%s': decimal below minimum value. Expected a value >= %g, but got %g instead.", param, lo, v)}
	}
	if v > hi {
		return &apiError{status: 400, typ: "invalid_request_error", param: param, code: "decimal_above_max_value",
			msg: fmt.Sprintf("Invalid '%s': decimal above maximum value. Expected a value <= %g, but got %g instead.", param, hi, v)}
	}
	return nil
}

// params validates the shared fields and returns the model, sampling
// parameters and choice count. defaultMax is the endpoint's default
// max_tokens (0: until the context is full).
func (h *Handler) params(ctx context.Context, s *sampling, defaultMax int) (genai.Info, llama.Params, int, error) {
	p := llama.Params{Temperature: 1, MaxTokens: defaultMax}
	if s.Model == "" {
		return genai.Info{}, p, 0, invalid("model", "you must provide a model parameter")
	}
	info, err := h.model(ctx, s.Model)
	if err != nil {
		return info, p, 0, err
	}
	if v := s.Temperature; v != nil {
		if err := rangeErr("temperature", *v, 0, 2); err != nil {
			return info, p, 0, err
		}
		p.Temperature = *v
	}
	if v := s.TopP; v != nil {
		if err := rangeErr("top_p", *v, 0, 1); err != nil {
			return info, p, 0, err
		}
		if *v == 0 {
			return info, p, 0, invalid("top_p", "Invalid 'top_p': must be greater than 0 (1 considers all tokens).")
		}
		p.TopP = *v
	}
	if v := s.TopK; v != nil {
		if *v < -1 {
			return info, p, 0, invalid("top_k", "Invalid 'top_k': expected -1, 0 (all tokens) or a positive integer, but got %d instead.", *v)
		}
		p.TopK = *v
	}
	for name, v := range map[string]*float64{"frequency_penalty": s.FrequencyPenalty, "presence_penalty": s.PresencePenalty} {
		if v != nil {
			if err := rangeErr(name, *v, -2, 2); err != nil {
				return info, p, 0, err
			}
		}
	}
	if s.FrequencyPenalty != nil {
		p.FrequencyPenalty = *s.FrequencyPenalty
	}
	if s.PresencePenalty != nil {
		p.PresencePenalty = *s.PresencePenalty
	}
	maxParam, maxTokens := "max_tokens", s.MaxTokens
	if s.MaxCompletionTokens != nil {
		maxParam, maxTokens = "max_completion_tokens", s.MaxCompletionTokens
	}
	if maxTokens != nil {
		switch {
		case *maxTokens < 1:
			return info, p, 0, &apiError{status: 400, typ: "invalid_request_error", param: maxParam, code: "integer_below_min_value",
				msg: fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", maxParam, *maxTokens)}
		case info.ContextLength > 0 && *maxTokens > info.ContextLength:
			return info, p, 0, &apiError{status: 400, typ: "invalid_request_error", param: maxParam, code: "invalid_value",
				msg: fmt.Sprintf("%s is too large: %d. This model supports at most %d completion tokens, whereas you provided %d.", maxParam, *maxTokens, info.ContextLength, *maxTokens)}
		}
		p.MaxTokens = *maxTokens
	}
	if len(s.Stop) > 0 && string(s.Stop) != "null" {
		var one string
		if err := json.Unmarshal(s.Stop, &one); err == nil {
			p.Stop = []string{one}
		} else if err := json.Unmarshal(s.Stop, &p.Stop); err != nil {
			return info, p, 0, invalid("stop", "Invalid 'stop': expected a string or an array of strings.")
		}
		if len(p.Stop) > 4 {
			return info, p, 0, &apiError{status: 400, typ: "invalid_request_error", param: "stop", code: "array_above_max_length",
				msg: fmt.Sprintf("Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length %d instead.", len(p.Stop))}
		}
		for _, st := range p.Stop {
			if st == "" {
				return info, p, 0, invalid("stop", "Invalid 'stop': stop sequences must not be empty.")
			}
		}
	}
	n := 1
	if s.N != nil {
		if *s.N < 1 || *s.N > 128 {
			return info, p, 0, &apiError{status: 400, typ: "invalid_request_error", param: "n", code: "integer_out_of_range",
				msg: fmt.Sprintf("Invalid 'n': integer out of range. Expected a value between 1 and 128, but got %d instead.", *s.N)}
		}
		n = *s.N
	}
	if s.Seed != nil {
		seed := uint64(*s.Seed)
		p.Seed = &seed
	}
	if err := p.Validate(); err != nil {
		return info, p, 0, invalid("", "%s", err.Error())
	}
	return info, p, n, nil
}

// choiceParams returns choice i's parameters: with a seed, each choice
// draws from seed+i, so choices differ yet the request is reproducible.
func choiceParams(p llama.Params, i int) llama.Params {
	if p.Seed != nil && i > 0 {
		s := *p.Seed + uint64(i)
		p.Seed = &s
	}
	return p
}

func finishReason(r genai.Result) string {
	if r.FinishReason == llama.FinishLength {
		return "length"
	}
	return "stop"
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (u *usage) add(r genai.Result) {
	u.PromptTokens = r.InputTokens
	u.CompletionTokens += r.OutputTokens
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
}

func (h *Handler) request(r *http.Request, model string, p llama.Params) *genai.Request {
	return &genai.Request{ModelID: model, Params: p, Caller: callerOf(r.Context()), API: "openai"}
}

// sse writes a server-sent-event stream, starting it lazily so that an
// error before the first event is an ordinary error response. Events go
// through a streamwrite.Writer: encoded here, written and flushed by its
// goroutine (coalesced when the client falls behind), which touches w
// only once an event is buffered. close must be called before the handler
// returns.
type sse struct {
	w       http.ResponseWriter
	out     *streamwrite.Writer
	started bool
}

// newSSE starts the stream's writer goroutine; ctx is the request's.
func newSSE(ctx context.Context, w http.ResponseWriter) *sse {
	return &sse{w: w, out: streamwrite.New(ctx, w, 0)}
}

func (s *sse) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	s.w.WriteHeader(http.StatusOK)
}

func (s *sse) send(v any) error {
	s.start()
	return s.out.Event(func(b *bytes.Buffer) error {
		b.WriteString("data: ")
		if err := json.NewEncoder(b).Encode(v); err != nil { // one '\n'
			return err
		}
		b.WriteByte('\n')
		return nil
	})
}

// sendChoice sends one chunk made of a constant frame (prefix and suffix,
// see splitFrame) around one JSON-encoded choice: the per-token chunks
// skip re-encoding the fields that never change.
func (s *sse) sendChoice(f frame, choice any) error {
	s.start()
	return s.out.Event(func(b *bytes.Buffer) error {
		b.WriteString("data: ")
		b.Write(f.prefix)
		if err := json.NewEncoder(b).Encode(choice); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's '\n'
		b.Write(f.suffix)
		b.WriteString("\n\n")
		return nil
	})
}

// frame is a chunk's JSON around its choices array's only element.
type frame struct{ prefix, suffix []byte }

// splitFrame encodes v, whose choices array must be empty, and splits it
// inside that array. (JSON string escaping keeps `"choices":[]` from
// occurring inside a string value.)
func splitFrame(v any) (frame, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return frame{}, err
	}
	const key = `"choices":[`
	i := bytes.Index(b, []byte(key+"]"))
	if i < 0 {
		return frame{}, fmt.Errorf("openai: no empty choices in %s", b)
	}
	i += len(key)
	return frame{prefix: b[:i], suffix: b[i:]}, nil
}

func (s *sse) done() {
	if s.started {
		_ = s.out.Event(func(b *bytes.Buffer) error {
			b.WriteString("data: [DONE]\n\n")
			return nil
		})
	}
	s.close()
}

// close waits for the writer goroutine; the stream's events are then all
// written (or the client is gone).
func (s *sse) close() { _ = s.out.Close() }

// fail ends a stream with an in-band error object (the SDKs raise it), or
// answers with an error if the stream has not started.
func (s *sse) fail(err error) {
	if !s.started {
		s.close()
		writeError(s.w, err)
		return
	}
	_ = s.send(map[string]any{"error": toAPIError(err).body()})
	s.close()
}

// Log-probabilities on the wire. The values are the engine's: the
// log-softmax of the model's raw logits (before penalties, temperature
// and filters), for the tokens of the returned text.

// chatLogprobsParams reads chat's logprobs (a boolean) and top_logprobs
// (0–20, only with logprobs).
func chatLogprobsParams(raw json.RawMessage, top *int) (bool, int, error) {
	on := false
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &on); err != nil {
			return false, 0, typeErr("logprobs", "a boolean", jsonKind(raw))
		}
	}
	if top == nil {
		return on, 0, nil
	}
	if !on {
		return false, 0, invalid("top_logprobs", "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.")
	}
	if err := intRangeErr("top_logprobs", *top, 0, 20); err != nil {
		return false, 0, err
	}
	return true, *top, nil
}

// completionLogprobsParams reads /v1/completions' logprobs: an integer in
// [0, 5], the number of alternatives besides the sampled token.
func completionLogprobsParams(raw json.RawMessage) (bool, int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, 0, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return false, 0, typeErr("logprobs", "an integer", jsonKind(raw))
	}
	if err := intRangeErr("logprobs", n, 0, 5); err != nil {
		return false, 0, err
	}
	return true, n, nil
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type tokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type chatLogprobs struct {
	Content []tokenLogprob `json:"content"`
	Refusal []tokenLogprob `json:"refusal"`
}

// byteList is OpenAI's bytes field: the token's UTF-8 bytes as integers
// (a token can hold part of a character).
func byteList(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

// chatLogprobsOf renders tokens as a chat choice's logprobs.
func chatLogprobsOf(tokens []genai.TokenLogprob) *chatLogprobs {
	out := &chatLogprobs{Content: make([]tokenLogprob, 0, len(tokens))}
	for _, t := range tokens {
		tl := tokenLogprob{Token: t.Token, Logprob: t.Logprob, Bytes: byteList(t.Token), TopLogprobs: make([]topLogprob, 0, len(t.Top))}
		for _, a := range t.Top {
			tl.TopLogprobs = append(tl.TopLogprobs, topLogprob{Token: a.Token, Logprob: a.Logprob, Bytes: byteList(a.Token)})
		}
		out.Content = append(out.Content, tl)
	}
	return out
}

// completionLogprobs is /v1/completions' logprobs object. top_logprobs
// maps token text to logprob: the n alternatives plus the sampled token,
// as vLLM answers (OpenAI: "up to logprobs+1 elements").
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// completionLogprobsOf renders tokens; offset is the character offset of
// the first token in the choice's text (streams continue from the last).
func completionLogprobsOf(tokens []genai.TokenLogprob, offset int) (*completionLogprobs, int) {
	out := &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	for _, t := range tokens {
		out.Tokens = append(out.Tokens, t.Token)
		out.TokenLogprobs = append(out.TokenLogprobs, t.Logprob)
		top := make(map[string]float64, len(t.Top)+1)
		for _, a := range t.Top {
			if _, dup := top[a.Token]; !dup {
				top[a.Token] = a.Logprob
			}
		}
		if _, ok := top[t.Token]; !ok {
			top[t.Token] = t.Logprob
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
		out.TextOffset = append(out.TextOffset, offset)
		offset += utf8.RuneCountInString(t.Token)
	}
	return out, offset
}
