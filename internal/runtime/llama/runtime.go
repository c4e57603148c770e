package llama

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

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
		Details           bool            `json:"details"`
	} `json:"parameters"`
}

// maxBody bounds the request body.
const maxBody = 16 << 20

// invokeOptions are the request's output options.
type invokeOptions struct {
	fullText bool // return_full_text: the prompt precedes the generated text
	details  bool // details: add TGI's details object
}

func parseInvoke(body io.Reader) (string, Params, invokeOptions, error) {
	var none invokeOptions
	var req invokeRequest
	data, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return "", Params{}, none, err
	}
	if len(data) > maxBody {
		return "", Params{}, none, runtime.BadInput("request body exceeds %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&req); err != nil {
		return "", Params{}, none, runtime.BadInput("request body is not valid JSON of the form {\"inputs\": \"...\", \"parameters\": {...}}: %v", err)
	}
	var prompt string
	switch {
	case req.Inputs != nil:
		prompt = *req.Inputs
	case req.Prompt != nil:
		prompt = *req.Prompt
	default:
		return "", Params{}, none, runtime.BadInput("request has no \"inputs\" (or \"prompt\") string")
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
		return "", p, none, runtime.BadInput("invalid top_p 0: must be in (0, 1]")
	}
	if q.RepetitionPenalty != nil && *q.RepetitionPenalty <= 0 {
		return "", p, none, runtime.BadInput("invalid repetition_penalty %v: must be > 0", *q.RepetitionPenalty)
	}
	// TGI samples when do_sample is true or any warper is set
	// (text_generation_server/utils/tokens.py: sampling = do_sample or
	// has_warpers), and decodes greedily otherwise — also when no
	// parameter is given at all.
	warpers := (q.Temperature != nil && *q.Temperature != 1) || (q.TopK != nil && *q.TopK != 0) ||
		(q.TopP != nil && *q.TopP < 1) || (q.MinP != nil && *q.MinP > 0)
	if !warpers && (q.DoSample == nil || !*q.DoSample) {
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
			return "", p, none, runtime.BadInput("invalid stop: must be a string or an array of strings")
		}
	}
	if err := p.Validate(); err != nil {
		return "", p, none, runtime.BadInput("%s", err.Error())
	}
	return prompt, p, invokeOptions{fullText: q.ReturnFullText, details: q.Details}, nil
}

// tgiDetails is TGI's "details" object (parameters.details: true, and the
// last event of a stream). finish_reason uses TGI's words: length,
// eos_token, stop_sequence.
type tgiDetails struct {
	FinishReason    string  `json:"finish_reason"`
	GeneratedTokens int     `json:"generated_tokens"`
	Seed            *uint64 `json:"seed"`
}

// invokeResult is one element of TGI's answer, [{"generated_text": ...}].
type invokeResult struct {
	GeneratedText string      `json:"generated_text"`
	Details       *tgiDetails `json:"details,omitempty"`
}

type streamToken struct {
	ID      int    `json:"id"`
	Text    string `json:"text"`
	Special bool   `json:"special"`
}

// streamLine is one event of a TGI stream.
type streamLine struct {
	Index         int          `json:"index,omitempty"`
	Token         *streamToken `json:"token,omitempty"`
	GeneratedText *string      `json:"generated_text"`
	Details       *tgiDetails  `json:"details"`
	Error         string       `json:"error,omitempty"`
	ErrorType     string       `json:"error_type,omitempty"`
}

func detailsOf(u Usage, seed *uint64) *tgiDetails {
	reason := "length"
	switch {
	case u.StopSequence != "":
		reason = "stop_sequence"
	case u.EndToken >= 0:
		reason = "eos_token"
	}
	return &tgiDetails{FinishReason: reason, GeneratedTokens: u.OutputTokens, Seed: seed}
}

// tokenCount is an invocation's token usage, read by the hosting service
// (runtime.Response.Usage) possibly while the generation still runs.
type tokenCount struct{ in, out atomic.Int64 }

func (c *tokenCount) usage() (int, int) { return int(c.in.Load()), int(c.out.Load()) }

// Invoke answers a Hugging Face TGI request as TGI does on SageMaker:
// {"inputs": "...", "parameters": {...}} → [{"generated_text": "..."}],
// with "details" (finish_reason, generated_tokens, seed) when
// parameters.details is true. When Accept is text/event-stream or
// application/jsonlines, the body streams one JSON object per token as it
// is generated ("data: ..." events for text/event-stream); the last one
// also carries generated_text and details, as TGI's /generate_stream does.
// Response.Usage reports the prompt and generated token counts.
// A streamed generation stops when ctx is done or Body is closed.
func (m *Model) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	prompt, p, opt, err := parseInvoke(req.Body)
	if err != nil {
		return nil, err
	}
	tokens := m.tok.Encode(prompt, true)
	if len(tokens) >= m.h.nCtx {
		return nil, runtime.BadInput("prompt has %d tokens; the context holds %d", len(tokens), m.h.nCtx)
	}
	var seed *uint64
	if p.Temperature > 0 {
		// TGI reports the seed a sampled generation used.
		if p.Seed == nil {
			s := rand.Uint64()
			p.Seed = &s
		}
		seed = p.Seed
	}
	greq := &GenerateRequest{Tokens: tokens, Params: p}
	prefix := ""
	if opt.fullText {
		prefix = prompt
	}
	count := &tokenCount{}
	count.in.Store(int64(len(tokens)))
	accept, _, _ := mime.ParseMediaType(req.Accept)
	if accept == "text/event-stream" || accept == "application/jsonlines" {
		resp := m.invokeStream(ctx, greq, prefix, seed, count, accept == "text/event-stream")
		resp.Usage = count.usage
		return resp, nil
	}
	var sb strings.Builder
	sb.WriteString(prefix)
	u, err := m.Generate(ctx, greq, func(t Token) error {
		count.out.Add(1)
		sb.WriteString(t.Text)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := invokeResult{GeneratedText: sb.String()}
	if opt.details {
		res.Details = detailsOf(u, seed)
	}
	out, err := json.Marshal([]invokeResult{res})
	if err != nil {
		return nil, err
	}
	return &runtime.Response{ContentType: "application/json", Body: io.NopCloser(bytes.NewReader(out)), Usage: count.usage}, nil
}

// invokeStream generates in a goroutine that writes to a pipe. The
// goroutine ends when generation ends, ctx is done, or the reader closes
// the body (the next write fails).
func (m *Model) invokeStream(ctx context.Context, greq *GenerateRequest, prefix string, seed *uint64, count *tokenCount, sse bool) *runtime.Response {
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
		var last streamLine
		u, err := m.Generate(ctx, greq, func(t Token) error {
			n := count.out.Add(1)
			full.WriteString(t.Text)
			l := streamLine{Index: int(n), Token: &streamToken{ID: t.ID, Text: t.Text, Special: m.tok.IsControl(t.ID)}}
			if t.Last {
				last = l // written with generated_text and details below
				return nil
			}
			return write(l)
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
		last.GeneratedText = &text
		last.Details = detailsOf(u, seed)
		_ = write(last)
		pw.Close()
	}()
	return &runtime.Response{ContentType: contentType, Body: pr}
}
