package openai

import (
	"encoding/json"
	"net/http"

	"github.com/inferbox/inferbox/internal/genai"
)

type completionRequest struct {
	sampling
	Prompt json.RawMessage `json:"prompt"`
}

type completionChoice struct {
	Index        int     `json:"index"`
	Text         string  `json:"text"`
	FinishReason *string `json:"finish_reason"`
	Logprobs     any     `json:"logprobs"`
}

type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	Choices           []completionChoice `json:"choices"`
	Usage             *usage             `json:"usage,omitempty"`
	SystemFingerprint string             `json:"system_fingerprint"`
}

// prompts reads prompt: a string or an array of strings (token-id prompts
// are not supported).
func prompts(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err == nil && len(many) > 0 {
		return many, nil
	}
	return nil, invalid("prompt", "Invalid 'prompt': expected a string or a non-empty array of strings.")
}

// completions is the legacy /v1/completions (max_tokens defaults to 16,
// as OpenAI's does).
func (h *Handler) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	info, p, n, err := h.params(r.Context(), &req.sampling, 16)
	if err != nil {
		writeError(w, err)
		return
	}
	withLogprobs, top, err := completionLogprobsParams(req.Logprobs)
	if err != nil {
		writeError(w, err)
		return
	}
	ps, err := prompts(req.Prompt)
	if err != nil {
		writeError(w, err)
		return
	}
	base := completion{ID: newID("cmpl-"), Object: "text_completion", Created: h.now().Unix(), Model: info.ID, SystemFingerprint: "inferbox"}
	var u usage
	var total usage
	var out *sse
	var fr frame
	if req.Stream {
		out = newSSE(r.Context(), w)
		defer out.close()
		empty := base
		empty.Choices = []completionChoice{}
		if fr, err = splitFrame(empty); err != nil {
			out.fail(err)
			return
		}
	}
	for pi, prompt := range ps {
		u = usage{}
		for i := range n {
			idx := pi*n + i
			g := h.request(r, info.ID, choiceParams(p, i))
			g.Prompt = prompt
			g.Logprobs, g.TopLogprobs = withLogprobs, top
			var emit func(string) error
			if req.Stream {
				// Log-probabilities go out with the text piece their
				// tokens begin; text offsets run on across chunks.
				var pending []genai.TokenLogprob
				offset := 0
				g.OnLogprobs = func(t []genai.TokenLogprob) { pending = append(pending, t...) }
				emit = func(text string) error {
					ch := completionChoice{Index: idx, Text: text}
					if withLogprobs {
						ch.Logprobs, offset = completionLogprobsOf(pending, offset)
						pending = pending[:0]
					}
					return out.sendChoice(fr, ch)
				}
			}
			res, err := h.svc.Generate(r.Context(), g, emit)
			if err != nil {
				if req.Stream {
					out.fail(err)
				} else {
					writeError(w, err)
				}
				return
			}
			u.add(res)
			fr := finishReason(res)
			if req.Stream {
				c := base
				c.Choices = []completionChoice{{Index: idx, FinishReason: &fr}}
				if err := out.send(c); err != nil {
					return
				}
			} else {
				ch := completionChoice{Index: idx, Text: res.Text, FinishReason: &fr}
				if withLogprobs {
					ch.Logprobs, _ = completionLogprobsOf(res.Logprobs, 0)
				}
				base.Choices = append(base.Choices, ch)
			}
		}
		total.PromptTokens += u.PromptTokens
		total.CompletionTokens += u.CompletionTokens
	}
	total.TotalTokens = total.PromptTokens + total.CompletionTokens
	if !req.Stream {
		base.Usage = &total
		writeJSON(w, http.StatusOK, base)
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		c := base
		c.Choices = []completionChoice{}
		c.Usage = &total
		if err := out.send(c); err != nil {
			return
		}
	}
	out.done()
}
