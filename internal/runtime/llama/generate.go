package llama

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/runtime"
)

// Model is a loaded GGUF model. Its weights are read-only (a shared memory
// mapping); every generation has its own KV cache, so Generate and Invoke
// may be called concurrently.
type Model struct {
	file    *gguf.File
	h       hparams
	w       *weights
	tok     *Tokenizer
	freqs   []float64
	threads int
	log     *slog.Logger

	// Lifecycle: Close stops running generations (closing done), waits for
	// them, then releases the mapping.
	mu        sync.Mutex
	closed    bool
	active    sync.WaitGroup
	done      chan struct{}
	closeOnce sync.Once
	streams   map[*io.PipeWriter]struct{} // open Invoke streams, under mu

	batch *batcher // decodes concurrent generations together
}

// ErrClosed is returned by Generate on a closed Model.
var ErrClosed = errors.New("llama: model closed")

// Finish reasons.
const (
	FinishStop   = "stop"   // a stop sequence or an end-of-generation token
	FinishLength = "length" // max tokens or the context length
)

// GenerateRequest is one generation: Prompt is tokenized (with BOS as the
// file asks) unless Tokens is given.
type GenerateRequest struct {
	Prompt string
	Tokens []int
	Params Params
	// Logprobs asks for each generated token's log-probability in
	// Token.Logprob; TopLogprobs (0 to MaxTopLogprobs) for that many most
	// likely alternatives in Token.Top. Both are taken from the model's
	// raw distribution: the log-softmax of the logits before penalties,
	// temperature and filters (what vLLM reports by default and OpenAI
	// documents). When Logprobs is false nothing is computed.
	Logprobs    bool
	TopLogprobs int
}

// MaxTopLogprobs bounds GenerateRequest.TopLogprobs (OpenAI's limit).
const MaxTopLogprobs = 20

// TokenLogprob is one token and its log-probability.
type TokenLogprob struct {
	ID      int
	Logprob float64
}

// Token is one generated token and the text it released. Text can be
// empty (a control token, an incomplete UTF-8 sequence, or text held back
// because it might begin a stop sequence) and can carry text held back
// from earlier tokens.
type Token struct {
	ID   int
	Text string
	// Last is set on the generation's final token.
	Last bool
	// Logprob is ID's log-probability and Top the most likely tokens,
	// most likely first, when GenerateRequest.Logprobs asks for them.
	Logprob float64
	Top     []TokenLogprob
}

// Usage reports a finished generation.
type Usage struct {
	InputTokens  int
	OutputTokens int
	// FinishReason is FinishStop or FinishLength.
	FinishReason string
	// StopSequence is the stop sequence that ended generation; empty when
	// it ended on an end-of-generation token (or by length).
	StopSequence string
	// EndToken is the end-of-generation token that ended it, -1 otherwise.
	EndToken int
}

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *Tokenizer { return m.tok }

// ContextLength returns the context length in use (the file's, capped).
func (m *Model) ContextLength() int { return m.h.nCtx }

// Close stops running generations (they return ErrClosed), waits for
// them, and releases the model's reference to the file mapping. It is
// idempotent.
func (m *Model) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		close(m.done)
		for pw := range m.streams {
			// Unblocks a generator waiting for a reader that never reads.
			pw.CloseWithError(ErrClosed)
		}
		m.mu.Unlock()
		m.active.Wait()
		m.file.Close()
	})
	return nil
}

func (m *Model) acquire() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.active.Add(1)
	return nil
}

// stopped returns why generation must stop now, if it must.
func (m *Model) stopped(ctx context.Context) error {
	select {
	case <-m.done:
		return ErrClosed
	default:
		return ctx.Err()
	}
}

// Generate produces tokens for req, calling emit for each one as it is
// generated. It returns when an end token or stop sequence is produced, the
// token or context limit is reached, emit fails, or ctx is done. Invalid
// parameters and prompts return a *runtime.ModelError with status 400.
func (m *Model) Generate(ctx context.Context, req *GenerateRequest, emit func(Token) error) (Usage, error) {
	u := Usage{EndToken: -1}
	if err := m.acquire(); err != nil {
		return u, err
	}
	defer m.active.Done()
	p := req.Params
	if err := p.Validate(); err != nil {
		return u, runtime.BadInput("%s", err.Error())
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > MaxTopLogprobs {
		return u, runtime.BadInput("invalid top_logprobs %d: must be in [0, %d]", req.TopLogprobs, MaxTopLogprobs)
	}
	tokens := req.Tokens
	if tokens == nil {
		tokens = m.tok.Encode(req.Prompt, true)
	}
	if len(tokens) == 0 {
		if m.tok.BOS() < 0 {
			return u, runtime.BadInput("empty prompt and the model has no BOS token")
		}
		tokens = []int{m.tok.BOS()}
	}
	for _, id := range tokens {
		if id < 0 || id >= m.w.tokEmbd.rows {
			return u, runtime.BadInput("token id %d out of range [0, %d)", id, m.w.tokEmbd.rows)
		}
	}
	u.InputTokens = len(tokens)
	if len(tokens) >= m.h.nCtx {
		return u, runtime.BadInput("prompt has %d tokens; the context holds %d", len(tokens), m.h.nCtx)
	}
	seed := rand.Uint64()
	if p.Seed != nil {
		seed = *p.Seed
	}
	smp := newSampler(p, seed)
	s := m.newState()
	b := m.batch
	b.join()
	defer b.leave()
	for i := 0; i < len(tokens); i += prefillChunk {
		if err := m.stopped(ctx); err != nil {
			return u, err
		}
		end := min(i+prefillChunk, len(tokens))
		b.run(&step{s: s, tokens: tokens[i:end], logits: end == len(tokens)})
	}
	history := append(make([]int, 0, len(tokens)+64), tokens...)
	out := newTextStream(p.Stop)
	for {
		if err := m.stopped(ctx); err != nil {
			return u, err
		}
		id := smp.sample(s.logits, history)
		var lp float64
		var top []TokenLogprob
		if req.Logprobs {
			lp, top = logprobs(s.logits, id, req.TopLogprobs)
		}
		u.OutputTokens++
		history = append(history, id)
		last := false
		switch {
		case m.tok.IsEnd(id):
			u.FinishReason, u.EndToken, last = FinishStop, id, true
		case p.MaxTokens > 0 && u.OutputTokens >= p.MaxTokens, s.pos >= m.h.nCtx:
			u.FinishReason, last = FinishLength, true
		}
		var text string
		if u.EndToken < 0 {
			var stop string
			text, stop = out.push(m.tok.Piece(id))
			if stop != "" {
				u.FinishReason, u.StopSequence, last = FinishStop, stop, true
			}
		}
		if last && u.StopSequence == "" {
			text += out.flush()
		}
		b.away() // emit may block on a slow reader: others must not wait for it
		err := emit(Token{ID: id, Text: text, Last: last, Logprob: lp, Top: top})
		b.back()
		if err != nil {
			return u, err
		}
		if last {
			return u, nil
		}
		b.run(&step{s: s, tokens: []int{id}, logits: true})
	}
}

// textStream turns token bytes into text that is safe to release: whole
// UTF-8 characters, never the beginning of a possible stop sequence.
type textStream struct {
	stops   []string
	raw     []byte // bytes not yet decoded (an incomplete UTF-8 tail)
	pending string // decoded text not yet released
	maxStop int
}

func newTextStream(stops []string) *textStream {
	ts := &textStream{stops: stops}
	for _, s := range stops {
		ts.maxStop = max(ts.maxStop, len(s))
	}
	return ts
}

// push adds a token's bytes and returns the text that can be released. If
// a stop sequence now appears, it returns the text before it and the stop.
func (ts *textStream) push(b []byte) (string, string) {
	ts.raw = append(ts.raw, b...)
	ts.pending += decodeComplete(&ts.raw)
	if len(ts.stops) > 0 {
		at, which := -1, ""
		for _, s := range ts.stops {
			if i := strings.Index(ts.pending, s); i >= 0 && (at < 0 || i < at) {
				at, which = i, s
			}
		}
		if at >= 0 {
			out := ts.pending[:at]
			ts.pending = ""
			return out, which
		}
	}
	hold := ts.holdBack()
	out := ts.pending[:len(ts.pending)-hold]
	ts.pending = ts.pending[len(ts.pending)-hold:]
	return out, ""
}

// holdBack returns the length of the longest suffix of pending that is a
// proper prefix of a stop sequence.
func (ts *textStream) holdBack() int {
	best := 0
	for _, s := range ts.stops {
		for n := min(len(s)-1, len(ts.pending)); n > best; n-- {
			if strings.HasSuffix(ts.pending, s[:n]) {
				best = n
				break
			}
		}
	}
	return best
}

// flush releases everything, with an incomplete UTF-8 tail as U+FFFD.
func (ts *textStream) flush() string {
	out := ts.pending
	if len(ts.raw) > 0 {
		out += strings.ToValidUTF8(string(ts.raw), "\uFFFD")
	}
	ts.pending, ts.raw = "", nil
	return out
}

// decodeComplete removes and returns the longest prefix of *raw made of
// whole characters; invalid bytes become U+FFFD, an incomplete tail stays.
func decodeComplete(raw *[]byte) string {
	b := *raw
	var sb strings.Builder
	i := 0
	for i < len(b) {
		if !utf8.FullRune(b[i:]) {
			break
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[i : i+n])
		}
		i += n
	}
	*raw = append(b[:0], b[i:]...)
	return sb.String()
}

// Load opens a GGUF file through reg and prepares it for generation.
// maxCtx caps the context length (0: the file's); threads bounds the
// goroutines one mat-vec uses.
func Load(reg *gguf.Registry, path string, maxCtx, threads int, log *slog.Logger) (*Model, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := reg.Open(path)
	if err != nil {
		return nil, wrapUnsupported(err)
	}
	m, err := newModel(f, maxCtx, threads, log)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("llama: %s: %w", path, err)
	}
	return m, nil
}

func wrapUnsupported(err error) error {
	if errors.Is(err, gguf.ErrUnsupported) {
		return fmt.Errorf("%w: %w", runtime.ErrUnsupported, err)
	}
	return err
}

func newModel(f *gguf.File, maxCtx, threads int, log *slog.Logger) (*Model, error) {
	h, err := readHparams(f, maxCtx)
	if err != nil {
		return nil, err
	}
	w, err := loadWeights(f, h)
	if err != nil {
		return nil, err
	}
	tok, err := newTokenizer(f)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() > w.tokEmbd.rows {
		return nil, fmt.Errorf("vocabulary has %d tokens but token_embd.weight has %d rows", tok.VocabSize(), w.tokEmbd.rows)
	}
	h.nVocab = w.output.rows
	m := &Model{file: f, h: h, w: w, tok: tok, freqs: ropeFreqs(h), threads: max(1, threads), log: log, done: make(chan struct{}), streams: map[*io.PipeWriter]struct{}{}}
	m.batch = newBatcher(m)
	return m, nil
}
