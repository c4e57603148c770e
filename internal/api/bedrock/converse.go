package bedrock

import (
	"encoding/json"
	"net/http"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

type converseRequest struct {
	Messages []struct {
		Role    string                       `json:"role"`
		Content []map[string]json.RawMessage `json:"content"`
	} `json:"messages"`
	System          []map[string]json.RawMessage `json:"system"`
	InferenceConfig *struct {
		MaxTokens     *int     `json:"maxTokens"`
		Temperature   *float64 `json:"temperature"`
		TopP          *float64 `json:"topP"`
		StopSequences []string `json:"stopSequences"`
	} `json:"inferenceConfig"`
	AdditionalModelRequestFields map[string]json.RawMessage `json:"additionalModelRequestFields"`
}

// textOf returns a content block's text; other block kinds are refused.
func textOf(block map[string]json.RawMessage) (string, error) {
	raw, ok := block["text"]
	if !ok {
		for k := range block {
			return "", badf("This model doesn't support the %s content block that you provided. Try again with supported content blocks.", k)
		}
		return "", badf("A content block is empty.")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badf("The text content block must be a string.")
	}
	return s, nil
}

// parseConverse turns a Converse body into messages and parameters,
// refusing what Bedrock refuses: no messages, a conversation that does
// not start with the user or does not alternate, out-of-range values.
func parseConverse(body []byte, ctxLen int) ([]genai.Message, llama.Params, error) {
	var req converseRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, llama.Params{}, badf("Malformed input request, please reformat your input and try again.")
	}
	p := llama.Params{Temperature: 0.5, TopP: 0.9}
	var msgs []genai.Message
	for _, sb := range req.System {
		t, err := textOf(sb)
		if err != nil {
			return nil, p, err
		}
		msgs = append(msgs, genai.Message{Role: "system", Content: t})
	}
	if len(req.Messages) == 0 {
		return nil, p, badf("The model returned the following errors: messages: at least one message is required")
	}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return nil, p, badf("1 validation error detected: Value '%s' at 'messages.%d.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", m.Role, i+1)
		}
		if i == 0 && m.Role != "user" {
			return nil, p, badf("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
		}
		if i > 0 && m.Role == req.Messages[i-1].Role {
			return nil, p, badf("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.")
		}
		text := ""
		for _, b := range m.Content {
			t, err := textOf(b)
			if err != nil {
				return nil, p, err
			}
			text += t
		}
		msgs = append(msgs, genai.Message{Role: m.Role, Content: text})
	}
	if c := req.InferenceConfig; c != nil {
		if c.MaxTokens != nil {
			if *c.MaxTokens < 1 {
				return nil, p, badf("1 validation error detected: Value '%d' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1", *c.MaxTokens)
			}
			if ctxLen > 0 && *c.MaxTokens > ctxLen {
				return nil, p, badf("The maximum tokens you requested exceeds the model limit of %d. Try again with a maximum tokens value that is lower than %d.", ctxLen, ctxLen)
			}
			p.MaxTokens = *c.MaxTokens
		}
		if c.Temperature != nil {
			if *c.Temperature < 0 || *c.Temperature > 1 {
				return nil, p, badf("1 validation error detected: Value '%s' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1 and greater than or equal to 0", num(*c.Temperature))
			}
			p.Temperature = *c.Temperature
		}
		if c.TopP != nil {
			if *c.TopP < 0 || *c.TopP > 1 {
				return nil, p, badf("1 validation error detected: Value '%s' at 'inferenceConfig.topP' failed to satisfy constraint: Member must have value less than or equal to 1 and greater than or equal to 0", num(*c.TopP))
			}
			p.TopP = *c.TopP
		}
		for _, s := range c.StopSequences {
			if s == "" {
				return nil, p, badf("1 validation error detected: Value at 'inferenceConfig.stopSequences' failed to satisfy constraint: Member must have length greater than or equal to 1")
			}
		}
		p.Stop = c.StopSequences
	}
	for k, v := range req.AdditionalModelRequestFields {
		switch k {
		case "top_k":
			if err := json.Unmarshal(v, &p.TopK); err != nil || p.TopK < 0 {
				return nil, p, badf("Malformed input request: #/top_k: expected a non-negative integer, please reformat your input and try again.")
			}
		default:
			return nil, p, badf("Malformed input request: #: extraneous key [%s] is not permitted, please reformat your input and try again.", k)
		}
	}
	return msgs, p, nil
}

// stopReason maps the engine's finish to Converse's stopReason.
func stopReason(r genai.Result) string {
	switch {
	case r.FinishReason == llama.FinishLength:
		return "max_tokens"
	case r.StopSequence != "":
		return "stop_sequence"
	}
	return "end_turn"
}

type tokenUsage struct {
	InputTokens  int `json:"inputTokens"`
	OutputTokens int `json:"outputTokens"`
	TotalTokens  int `json:"totalTokens"`
}

func usageOf(r genai.Result) tokenUsage {
	return tokenUsage{r.InputTokens, r.OutputTokens, r.InputTokens + r.OutputTokens}
}

func (h *Handler) converseInput(w http.ResponseWriter, r *http.Request) (*genai.Request, bool) {
	info, err := h.modelOf(r)
	if err != nil {
		h.fail(w, err)
		return nil, false
	}
	body, err := readBody(r)
	if err != nil {
		h.fail(w, err)
		return nil, false
	}
	msgs, params, err := parseConverse(body, info.ContextLength)
	if err != nil {
		h.fail(w, err)
		return nil, false
	}
	return &genai.Request{ModelID: info.ID, Messages: msgs, Params: params, Caller: h.caller(r),
		API: "bedrock"}, true
}

// converse is Converse.
func (h *Handler) converse(w http.ResponseWriter, r *http.Request) {
	req, ok := h.converseInput(w, r)
	if !ok {
		return
	}
	res, err := h.svc.Generate(r.Context(), req, nil)
	if err != nil {
		h.fail(w, err)
		return
	}
	awsproto.WriteJSON(w, http.StatusOK, "application/json", map[string]any{
		"output": map[string]any{"message": map[string]any{
			"role": "assistant", "content": []map[string]string{{"text": res.Text}}}},
		"stopReason": stopReason(res),
		"usage":      usageOf(res),
		"metrics":    map[string]int64{"latencyMs": ms(res.Latency)},
	})
}

// converseStream is ConverseStream: messageStart, contentBlockDelta per
// piece of text, contentBlockStop, messageStop, metadata.
func (h *Handler) converseStream(w http.ResponseWriter, r *http.Request) {
	req, ok := h.converseInput(w, r)
	if !ok {
		return
	}
	ev := newEventWriter(r.Context(), w, nil)
	defer ev.close()
	started := false
	begin := func() error {
		if started {
			return nil
		}
		started = true
		return ev.event("messageStart", map[string]string{"role": "assistant"})
	}
	res, err := h.svc.Generate(r.Context(), req, func(text string) error {
		if err := begin(); err != nil {
			return err
		}
		return ev.event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]string{"text": text}})
	})
	if err != nil {
		h.finishStream(w, ev, err)
		return
	}
	steps := []func() error{
		begin,
		func() error { return ev.event("contentBlockStop", map[string]int{"contentBlockIndex": 0}) },
		func() error { return ev.event("messageStop", map[string]string{"stopReason": stopReason(res)}) },
		func() error {
			return ev.event("metadata", map[string]any{"usage": usageOf(res), "metrics": map[string]int64{"latencyMs": ms(res.Latency)}})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			h.log.Debug("stream write failed", "err", err)
			return
		}
	}
}
