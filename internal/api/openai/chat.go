package openai

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/inferbox/inferbox/internal/genai"
)

type chatRequest struct {
	sampling
	TopLogprobs *int `json:"top_logprobs"`
	Messages    []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// contentText reads a message's content: a string or an array of parts,
// of which only text parts are supported.
func contentText(raw json.RawMessage, i int) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid("messages", "Invalid 'messages[%d].content': expected a string or an array of content parts.", i)
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", invalid("messages", "Invalid 'messages[%d].content': content parts of type '%s' are not supported by this model.", i, p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func chatMessages(req *chatRequest) ([]genai.Message, error) {
	if len(req.Messages) == 0 {
		return nil, &apiError{status: 400, typ: "invalid_request_error", param: "messages", code: "empty_array",
			msg: "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."}
	}
	out := make([]genai.Message, 0, len(req.Messages))
	for i, m := range req.Messages {
		role := m.Role
		switch role {
		case "system", "user", "assistant":
		case "developer":
			role = "system"
		default:
			return nil, invalid("messages", "Invalid value: '%s'. Supported values are: 'system', 'developer', 'user' and 'assistant'.", m.Role)
		}
		text, err := contentText(m.Content, i)
		if err != nil {
			return nil, err
		}
		out = append(out, genai.Message{Role: role, Content: text})
	}
	return out, nil
}

type chatChoice struct {
	Index        int            `json:"index"`
	Message      map[string]any `json:"message,omitempty"`
	Delta        map[string]any `json:"delta,omitempty"`
	FinishReason *string        `json:"finish_reason"`
	Logprobs     any            `json:"logprobs"`
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage"`
	SystemFingerprint string       `json:"system_fingerprint"`
}

func (h *Handler) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	info, p, n, err := h.params(r.Context(), &req.sampling, 0)
	if err != nil {
		writeError(w, err)
		return
	}
	withLogprobs, top, err := chatLogprobsParams(req.Logprobs, req.TopLogprobs)
	if err != nil {
		writeError(w, err)
		return
	}
	msgs, err := chatMessages(&req)
	if err != nil {
		writeError(w, err)
		return
	}
	base := chatCompletion{ID: newID("chatcmpl-"), Created: h.now().Unix(), Model: info.ID, SystemFingerprint: "inferbox"}
	var u usage
	if !req.Stream {
		base.Object = "chat.completion"
		for i := range n {
			g := h.request(r, info.ID, choiceParams(p, i))
			g.Messages = msgs
			g.Logprobs, g.TopLogprobs = withLogprobs, top
			res, err := h.svc.Generate(r.Context(), g, nil)
			if err != nil {
				writeError(w, err)
				return
			}
			u.add(res)
			fr := finishReason(res)
			c := chatChoice{Index: i, FinishReason: &fr,
				Message: map[string]any{"role": "assistant", "content": res.Text, "refusal": nil}}
			if withLogprobs {
				c.Logprobs = chatLogprobsOf(res.Logprobs)
			}
			base.Choices = append(base.Choices, c)
		}
		base.Usage = &u
		writeJSON(w, http.StatusOK, base)
		return
	}
	base.Object = "chat.completion.chunk"
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	out := newSSE(r.Context(), w)
	defer out.close()
	empty := base
	empty.Choices = []chatChoice{}
	fr, err := splitFrame(empty)
	if err != nil {
		out.fail(err)
		return
	}
	chunk := func(c chatChoice) error { return out.sendChoice(fr, c) }
	for i := range n {
		g := h.request(r, info.ID, choiceParams(p, i))
		g.Messages = msgs
		// Log-probabilities go out with the text piece their tokens begin.
		var pending []genai.TokenLogprob
		g.Logprobs, g.TopLogprobs = withLogprobs, top
		g.OnLogprobs = func(t []genai.TokenLogprob) { pending = append(pending, t...) }
		// The role chunk goes out with the first text (or the end), so a
		// request refused before generating is an ordinary error reply.
		began := false
		begin := func() error {
			if began {
				return nil
			}
			began = true
			return chunk(chatChoice{Index: i, Delta: map[string]any{"role": "assistant", "content": ""}})
		}
		res, err := h.svc.Generate(r.Context(), g, func(text string) error {
			if err := begin(); err != nil {
				return err
			}
			c := chatChoice{Index: i, Delta: map[string]any{"content": text}}
			if withLogprobs {
				c.Logprobs = chatLogprobsOf(pending)
				pending = pending[:0]
			}
			return chunk(c)
		})
		if err != nil {
			out.fail(err)
			return
		}
		u.add(res)
		fr := finishReason(res)
		if err := begin(); err != nil {
			return
		}
		if err := chunk(chatChoice{Index: i, Delta: map[string]any{}, FinishReason: &fr}); err != nil {
			return
		}
	}
	if includeUsage {
		last := base
		last.Choices = []chatChoice{}
		last.Usage = &u
		if err := out.send(last); err != nil {
			return
		}
	}
	out.done()
}
