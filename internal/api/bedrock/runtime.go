package bedrock

import (
	"encoding/json"
	"net/http"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

// llamaBody is the Meta Llama InvokeModel body. Defaults are the AWS
// model-parameters-meta page's: temperature 0.5, top_p 0.9, max_gen_len 512.
type llamaBody struct {
	Prompt      *string  `json:"prompt"`
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	MaxGenLen   *int     `json:"max_gen_len"`
}

// llamaReply is the Meta Llama response body (and each stream chunk).
type llamaReply struct {
	Generation           string         `json:"generation"`
	PromptTokenCount     *int           `json:"prompt_token_count"`
	GenerationTokenCount int            `json:"generation_token_count"`
	StopReason           *string        `json:"stop_reason"`
	Metrics              map[string]any `json:"amazon-bedrock-invocationMetrics,omitempty"`
}

// parseLlama validates a Llama body the way Bedrock words schema errors.
func parseLlama(body []byte, ctxLen int) (string, llama.Params, error) {
	p := llama.Params{Temperature: 0.5, TopP: 0.9, MaxTokens: 512}
	var b llamaBody
	err := parseBody(body, []field{
		{name: "prompt", kind: "String", required: true},
		{name: "temperature", kind: "Number", min: 0, max: 1},
		{name: "top_p", kind: "Number", min: 0, max: 1},
		maxTokensField("max_gen_len", 1, ctxLen),
	}, &b)
	if err != nil {
		return "", p, err
	}
	if b.Temperature != nil {
		p.Temperature = *b.Temperature
	}
	if b.TopP != nil {
		p.TopP = *b.TopP // 0 or 1 disables, as AWS documents
	}
	if b.MaxGenLen != nil {
		p.MaxTokens = *b.MaxGenLen
	}
	return *b.Prompt, p, nil
}

func num(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func (h *Handler) caller(r *http.Request) string { return awsproto.Identify(r).AccessKeyID }

// invoke is InvokeModel with the model's provider body (bodies.go); the
// token counts and latency also go out as X-Amzn-Bedrock-* headers.
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request) {
	info, err := h.modelOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	pb := bodyFor(info)
	prompt, params, err := pb.parse(body, info.ContextLength)
	if err != nil {
		h.fail(w, err)
		return
	}
	res, err := h.svc.Generate(r.Context(), &genai.Request{ModelID: info.ID, Prompt: prompt, Params: params,
		Caller: h.caller(r), API: "bedrock"}, nil)
	if err != nil {
		h.fail(w, err)
		return
	}
	setUsageHeaders(w, res)
	awsproto.WriteJSON(w, http.StatusOK, "application/json", pb.reply(res))
}

// invokeStream is InvokeModelWithResponseStream: each piece of text is a
// chunk event carrying base64 JSON (the provider's stream chunk); the last
// chunk carries the stop reason and amazon-bedrock-invocationMetrics.
func (h *Handler) invokeStream(w http.ResponseWriter, r *http.Request) {
	info, err := h.modelOf(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	pb := bodyFor(info)
	prompt, params, err := pb.parse(body, info.ContextLength)
	if err != nil {
		h.fail(w, err)
		return
	}
	ev := newEventWriter(r.Context(), w, func(hd http.Header) { hd.Set("X-Amzn-Bedrock-Content-Type", "application/json") })
	defer ev.close()
	chunk := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		// PayloadPart.bytes is a blob: JSON encodes []byte as base64.
		return ev.event("chunk", map[string][]byte{"bytes": b})
	}
	n := 0
	res, err := h.svc.Generate(r.Context(), &genai.Request{ModelID: info.ID, Prompt: prompt, Params: params,
		Caller: h.caller(r), API: "bedrock"}, func(text string) error {
		n++
		return chunk(pb.chunk(text, n))
	})
	if err != nil {
		h.finishStream(w, ev, err)
		return
	}
	if err := chunk(pb.last(res, invocationMetrics(res))); err != nil {
		h.log.Debug("stream write failed", "err", err)
	}
}
