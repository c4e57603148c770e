package bedrock

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

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
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return "", llama.Params{}, badf("Malformed input request, please reformat your input and try again.")
	}
	var viol []string
	for k := range raw {
		switch k {
		case "prompt", "temperature", "top_p", "max_gen_len":
		default:
			viol = append(viol, "#: extraneous key ["+k+"] is not permitted")
		}
	}
	var b llamaBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return "", llama.Params{}, badf("Malformed input request: %s, please reformat your input and try again.", err.Error())
	}
	if b.Prompt == nil {
		viol = append(viol, "#: required key [prompt] not found")
	}
	p := llama.Params{Temperature: 0.5, TopP: 0.9, MaxTokens: 512}
	if b.Temperature != nil {
		if *b.Temperature < 0 || *b.Temperature > 1 {
			viol = append(viol, "#/temperature: "+num(*b.Temperature)+" is not in range [0, 1]")
		}
		p.Temperature = *b.Temperature
	}
	if b.TopP != nil {
		if *b.TopP < 0 || *b.TopP > 1 {
			viol = append(viol, "#/top_p: "+num(*b.TopP)+" is not in range [0, 1]")
		}
		p.TopP = *b.TopP // 0 or 1 disables, as AWS documents
	}
	if b.MaxGenLen != nil {
		if *b.MaxGenLen < 1 || (ctxLen > 0 && *b.MaxGenLen > ctxLen) {
			viol = append(viol, "#/max_gen_len: "+num(float64(*b.MaxGenLen))+" is not in range [1, "+num(float64(ctxLen))+"]")
		}
		p.MaxTokens = *b.MaxGenLen
	}
	if len(viol) > 0 {
		return "", p, badf("Malformed input request: %d schema violations found, please reformat your input and try again. %s",
			len(viol), strings.Join(viol, ", "))
	}
	return *b.Prompt, p, nil
}

func num(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func (h *Handler) caller(r *http.Request) string { return awsproto.Identify(r).AccessKeyID }

// invoke is InvokeModel with the Meta Llama body.
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
	prompt, params, err := parseLlama(body, info.ContextLength)
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
	in, reason := res.InputTokens, res.FinishReason
	awsproto.WriteJSON(w, http.StatusOK, "application/json", llamaReply{
		Generation: res.Text, PromptTokenCount: &in, GenerationTokenCount: res.OutputTokens, StopReason: &reason})
}

// invokeStream is InvokeModelWithResponseStream: each piece of text is a
// chunk event carrying base64 JSON (the Llama stream chunk); the last
// chunk carries stop_reason and amazon-bedrock-invocationMetrics.
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
	prompt, params, err := parseLlama(body, info.ContextLength)
	if err != nil {
		h.fail(w, err)
		return
	}
	ev := newEventWriter(w, func(hd http.Header) { hd.Set("X-Amzn-Bedrock-Content-Type", "application/json") })
	chunk := func(v llamaReply) error {
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
		// Counts so far; prompt_token_count is null until the last chunk.
		return chunk(llamaReply{Generation: text, GenerationTokenCount: n})
	})
	if err != nil {
		h.finishStream(w, ev, err)
		return
	}
	in, reason := res.InputTokens, res.FinishReason
	err = chunk(llamaReply{PromptTokenCount: &in, GenerationTokenCount: res.OutputTokens, StopReason: &reason,
		Metrics: map[string]any{"inputTokenCount": res.InputTokens, "outputTokenCount": res.OutputTokens,
			"invocationLatency": ms(res.Latency), "firstByteLatency": ms(res.Latency)}})
	if err != nil {
		h.log.Debug("stream write failed", "err", err)
	}
}
