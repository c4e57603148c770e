package llama

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/runtime"
)

// Loader loads GGUF models as runtime.Models. All models it loads share
// file mappings through one gguf.Registry.
type Loader struct {
	reg    *gguf.Registry
	maxCtx int
}

// NewLoader returns a loader. maxContext caps every model's context length
// (0 keeps each file's own); a model's MAX_TOTAL_TOKENS environment
// variable (as in Hugging Face TGI) may lower it further.
func NewLoader(reg *gguf.Registry, maxContext int) *Loader {
	return &Loader{reg: reg, maxCtx: maxContext}
}

var _ runtime.Loader = (*Loader)(nil)

// Load finds the one .gguf file in spec.ModelDir (or spec.ModelDir is the
// file itself) and loads it with spec.Threads threads per mat-vec.
func (l *Loader) Load(ctx context.Context, spec runtime.Spec) (runtime.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := findGGUF(spec.ModelDir)
	if err != nil {
		return nil, err
	}
	maxCtx := l.maxCtx
	if v, ok := spec.Environment["MAX_TOTAL_TOKENS"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("llama: environment MAX_TOTAL_TOKENS=%q: must be a positive integer", v)
		}
		if maxCtx == 0 || n < maxCtx {
			maxCtx = n
		}
	}
	log := spec.Logger
	if log != nil {
		log = log.With("component", "llama")
	}
	m, err := Load(l.reg, path, maxCtx, spec.Threads, log)
	if err != nil {
		return nil, err
	}
	m.log.Info("loaded", "file", filepath.Base(path), "arch", m.h.arch, "layers", m.h.nLayer,
		"embedding", m.h.nEmbd, "context", m.h.nCtx, "vocab", m.tok.VocabSize(), "threads", m.threads)
	return m, nil
}

func findGGUF(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("llama: the model has no artifact (ModelDir is empty)")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("llama: %w", err)
	}
	if !st.IsDir() {
		return dir, nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, "*.gguf"))
	if err != nil {
		return "", err
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("llama: no .gguf file in %s", dir)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("llama: %d .gguf files in %s; expected one", len(matches), dir)
}

var _ runtime.Model = (*Model)(nil)

// invokeRequest is the Hugging Face TGI / LMI request shape.
type invokeRequest struct {
	Inputs     *string `json:"inputs"`
	Prompt     *string `json:"prompt"`
	Parameters struct {
		Temperature       *float64        `json:"temperature"`
		TopK              *int            `json:"top_k"`
		TopP              *float64        `json:"top_p"`
		MinP              *float64        `json:"min_p"`
		RepetitionPenalty *float64        `json:"repetition_penalty"`
		FrequencyPenalty  *float64        `json:"frequency_penalty"`
		PresencePenalty   *float64        `json:"presence_penalty"`
		MaxNewTokens      *int            `json:"max_new_tokens"`
		MaxTokens         *int            `json:"max_tokens"`
		Stop              json.RawMessage `json:"stop"`
		StopSequences     []string        `json:"stop_sequences"`
		Seed              *uint64         `json:"seed"`
		DoSample          *bool           `json:"do_sample"`
		ReturnFullText    bool            `json:"return_full_text"`
	} `json:"parameters"`
}

// maxBody bounds the request body.
const maxBody = 16 << 20

func parseInvoke(body io.Reader) (string, Params, bool, error) {
	var req invokeRequest
	data, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return "", Params{}, false, err
	}
	if len(data) > maxBody {
		return "", Params{}, false, runtime.BadInput("request body exceeds %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&req); err != nil {
		return "", Params{}, false, runtime.BadInput("request body is not valid JSON of the form {\"inputs\": \"...\", \"parameters\": {...}}: %v", err)
	}
	var prompt string
	switch {
	case req.Inputs != nil:
		prompt = *req.Inputs
	case req.Prompt != nil:
		prompt = *req.Prompt
	default:
		return "", Params{}, false, runtime.BadInput("request has no \"inputs\" (or \"prompt\") string")
	}
	q := req.Parameters
	p := Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
	set := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.Temperature, q.Temperature)
	set(&p.TopP, q.TopP)
	set(&p.MinP, q.MinP)
	set(&p.RepetitionPenalty, q.RepetitionPenalty)
	set(&p.FrequencyPenalty, q.FrequencyPenalty)
	set(&p.PresencePenalty, q.PresencePenalty)
	if q.TopP != nil && *q.TopP == 0 {
		return "", p, false, runtime.BadInput("invalid top_p 0: must be in (0, 1]")
	}
	if q.RepetitionPenalty != nil && *q.RepetitionPenalty <= 0 {
		return "", p, false, runtime.BadInput("invalid repetition_penalty %v: must be > 0", *q.RepetitionPenalty)
	}
	if q.DoSample != nil && !*q.DoSample {
		p.Temperature = 0
	}
	if q.TopK != nil {
		p.TopK = *q.TopK
	}
	switch {
	case q.MaxNewTokens != nil:
		p.MaxTokens = *q.MaxNewTokens
	case q.MaxTokens != nil:
		p.MaxTokens = *q.MaxTokens
	}
	p.Seed = q.Seed
	p.Stop = q.StopSequences
	if len(q.Stop) > 0 && string(q.Stop) != "null" {
		var one string
		var many []string
		if json.Unmarshal(q.Stop, &one) == nil {
			p.Stop = append(p.Stop, one)
		} else if json.Unmarshal(q.Stop, &many) == nil {
			p.Stop = append(p.Stop, many...)
		} else {
			return "", p, false, runtime.BadInput("invalid stop: must be a string or an array of strings")
		}
	}
	if err := p.Validate(); err != nil {
		return "", p, false, runtime.BadInput("%s", err.Error())
	}
	return prompt, p, q.ReturnFullText, nil
}

type usageJSON struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type invokeResponse struct {
	GeneratedText string    `json:"generated_text"`
	FinishReason  string    `json:"finish_reason"`
	StopSequence  string    `json:"stop_sequence,omitempty"`
	Usage         usageJSON `json:"usage"`
}

type streamToken struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

type streamLine struct {
	Token         *streamToken    `json:"token,omitempty"`
	GeneratedText *string         `json:"generated_text"`
	Details       *invokeResponse `json:"details,omitempty"`
	Error         string          `json:"error,omitempty"`
	ErrorType     string          `json:"error_type,omitempty"`
}

// Invoke answers a TGI-style request: {"inputs": "...", "parameters":
// {...}} → {"generated_text", "finish_reason", "usage"}. When Accept is
// text/event-stream or application/jsonlines, the body streams one JSON
// object per token as it is generated (as "data: ..." events for
// text/event-stream), then one object with generated_text and details
// (finish reason, usage).
// A streamed generation stops when ctx is done or Body is closed.
func (m *Model) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	prompt, p, fullText, err := parseInvoke(req.Body)
	if err != nil {
		return nil, err
	}
	tokens := m.tok.Encode(prompt, true)
	if len(tokens) >= m.h.nCtx {
		return nil, runtime.BadInput("prompt has %d tokens; the context holds %d", len(tokens), m.h.nCtx)
	}
	greq := &GenerateRequest{Tokens: tokens, Params: p}
	prefix := ""
	if fullText {
		prefix = prompt
	}
	accept, _, _ := mime.ParseMediaType(req.Accept)
	if accept == "text/event-stream" || accept == "application/jsonlines" {
		return m.invokeStream(ctx, greq, prefix, accept == "text/event-stream"), nil
	}
	var sb strings.Builder
	sb.WriteString(prefix)
	u, err := m.Generate(ctx, greq, func(t Token) error { sb.WriteString(t.Text); return nil })
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(responseOf(sb.String(), u))
	if err != nil {
		return nil, err
	}
	return &runtime.Response{ContentType: "application/json", Body: io.NopCloser(bytes.NewReader(out))}, nil
}

func responseOf(text string, u Usage) *invokeResponse {
	return &invokeResponse{
		GeneratedText: text, FinishReason: u.FinishReason, StopSequence: u.StopSequence,
		Usage: usageJSON{u.InputTokens, u.OutputTokens, u.InputTokens + u.OutputTokens},
	}
}

// invokeStream generates in a goroutine that writes to a pipe. The
// goroutine ends when generation ends, ctx is done, or the reader closes
// the body (the next write fails).
func (m *Model) invokeStream(ctx context.Context, greq *GenerateRequest, prefix string, sse bool) *runtime.Response {
	pr, pw := io.Pipe()
	m.mu.Lock()
	m.streams[pw] = struct{}{}
	m.mu.Unlock()
	contentType := "application/jsonlines"
	if sse {
		contentType = "text/event-stream"
	}
	go func() {
		defer func() {
			m.mu.Lock()
			delete(m.streams, pw)
			m.mu.Unlock()
		}()
		var full strings.Builder
		full.WriteString(prefix)
		write := func(l streamLine) error {
			b, err := json.Marshal(l)
			if err != nil {
				return err
			}
			if sse {
				b = append(append([]byte("data: "), b...), '\n', '\n')
			} else {
				b = append(b, '\n')
			}
			_, err = pw.Write(b)
			return err
		}
		u, err := m.Generate(ctx, greq, func(t Token) error {
			full.WriteString(t.Text)
			return write(streamLine{Token: &streamToken{ID: t.ID, Text: t.Text}})
		})
		if err != nil {
			var me *runtime.ModelError
			typ := "generation"
			if errors.As(err, &me) {
				typ = "validation"
			}
			_ = write(streamLine{Error: err.Error(), ErrorType: typ})
			pw.CloseWithError(err)
			return
		}
		text := full.String()
		_ = write(streamLine{GeneratedText: &text, Details: responseOf(text, u)})
		pw.Close()
	}()
	return &runtime.Response{ContentType: contentType, Body: pr}
}
