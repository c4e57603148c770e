// Package genai is the foundation-model service (Bedrock's on-demand mode):
// a catalog of GGUF foundation models registered at start-up, a shared
// elastic pool of llama instances per model (scaling from zero like a
// serverless endpoint), chat formatting, and per-request token metering
// into the usage ledger.
//
// Protocol adapters (api/bedrock, api/openai) call Generate; genai knows
// nothing of wire formats. It imports runtime, runtime/llama, pool, meter,
// gguf, instancetype, catalog (record types), objstore and apierr;
// never an adapter, hosting or server.
//
// Custom models (imported.go) are GGUF files imported into the data
// directory; only a provisioned throughput serves them.
package genai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

// ModeOnDemand is the ledger mode of on-demand invocations.
const ModeOnDemand = "bedrock-on-demand"

// Config configures the service. Zero values take the defaults noted.
type Config struct {
	Models []ModelSpec
	// InstanceType sizes each instance (threads, node reservation);
	// default ml.m5.large.
	InstanceType string
	// Concurrency is generations per instance (decoded together); default 4.
	Concurrency int
	// MaxInstances caps each model's pool; default 2.
	MaxInstances int
	// IdleTimeout stops an instance unused this long; default 5 minutes.
	IdleTimeout time.Duration
	// QueueTimeout bounds the wait for an instance; default 60 s.
	QueueTimeout time.Duration
	// CPUs is the machine's CPU count, capping threads per instance.
	CPUs int
	// Quotas limit on-demand traffic per model and caller (zero: none).
	Quotas Quotas
	// ProvisionedQueue bounds waiting requests per model unit of a
	// provisioned throughput; default 32.
	ProvisionedQueue int
	// ImportDir holds imported models' GGUF copies, named by content
	// hash; empty refuses model import jobs.
	ImportDir string
}

// Deps are the collaborators the composition root hands in.
type Deps struct {
	Loader   runtime.Loader // the llama loader
	Registry *gguf.Registry // to read model file headers
	Types    *instancetype.Catalog
	Node     *instancetype.Node // capacity reservations; nil skips them
	Ledger   *meter.Ledger      // nil: nothing is metered
	// Provisioned keeps provisioned throughputs; nil keeps them in memory.
	Provisioned ProvisionedStore
	// Imports keeps imported models and import jobs; nil keeps them in
	// memory.
	Imports ImportStore
	// Objects reads import sources (s3://, file://, paths); nil refuses
	// model import jobs.
	Objects ImportSource
	// Now is the quotas' clock; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service serves the registered foundation models.
type Service struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	it     instancetype.Type
	models map[string]*model
	order  []string
	quota  *limiter
	pt     *provisioner
	imp    *importer

	closeOnce sync.Once
}

type model struct {
	info Info
	spec ModelSpec
	chat *chatFormat
	pool *pool.Pool
	low  *lowGate // bounds low-priority generations (priority.go)
}

// New reads every model file's header and builds one (empty) pool per
// model. Errors name the model id and the problem.
func New(cfg Config, deps Deps) (*Service, error) {
	if cfg.InstanceType == "" {
		cfg.InstanceType = "ml.m5.large"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 2
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = 1
	}
	if cfg.ProvisionedQueue <= 0 {
		cfg.ProvisionedQueue = 32
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger.With("component", "genai"), models: map[string]*model{},
		quota: newLimiter(cfg.Quotas, deps.Now), pt: newProvisioner(), imp: newImporter()}
	if len(cfg.Models) > 0 {
		it, err := deps.Types.Lookup(cfg.InstanceType)
		if err != nil {
			return nil, fmt.Errorf("genai: instance type %q: %w", cfg.InstanceType, err)
		}
		s.it = it
	}
	for _, spec := range cfg.Models {
		if _, dup := s.models[spec.ID]; dup {
			return nil, fmt.Errorf("foundation model %q: registered twice", spec.ID)
		}
		m, err := s.register(spec)
		if err != nil {
			return nil, fmt.Errorf("foundation model %q (%s): %w", spec.ID, spec.Path, err)
		}
		s.models[spec.ID] = m
		s.order = append(s.order, spec.ID)
	}
	return s, nil
}

func (s *Service) register(spec ModelSpec) (*model, error) {
	meta, err := readMeta(s.deps.Registry, spec.Path)
	if err != nil {
		return nil, err
	}
	chat, err := newChatFormat(spec.ChatFormat, meta.template, meta.arch, meta.bos, meta.eos)
	if err != nil {
		return nil, err
	}
	info := Info{
		ID: spec.ID, Name: meta.name, Provider: spec.Provider, Architecture: meta.arch,
		ContextLength: meta.context, ChatFormat: chat.name, HasTemplate: meta.template != "",
		InferenceTypes: []string{"ON_DEMAND", "PROVISIONED"}, Modalities: []string{"TEXT"},
	}
	if info.Name == "" {
		info.Name = spec.ID
	}
	if info.Provider == "" {
		info.Provider = providerOf(spec.ID, meta.arch)
	}
	m := &model{info: info, spec: spec, chat: chat,
		low: newLowGate(lowPriorityLimit(s.cfg.Concurrency, s.cfg.MaxInstances))}
	m.pool = pool.New(pool.Config{
		Name:         "fm-" + spec.ID,
		Start:        s.starter(m),
		Concurrency:  s.cfg.Concurrency,
		QueueTimeout: s.cfg.QueueTimeout,
		Elastic:      true,
		MaxInstances: s.cfg.MaxInstances,
		Logger:       s.log,
	})
	s.log.Info("foundation model registered", "model", spec.ID, "arch", meta.arch,
		"context", meta.context, "chat_format", chat.name)
	return m, nil
}

// starter loads one instance of m for its on-demand pool.
func (s *Service) starter(m *model) pool.StartFunc {
	return s.startWith(m, meter.InstanceUsage{Mode: ModeOnDemand, Resource: m.spec.ID})
}

// startWith loads one instance of m: a node reservation, then the file;
// its lifetime is recorded as usage (with the instance's id, type and
// start filled in).
func (s *Service) startWith(m *model, usage meter.InstanceUsage) pool.StartFunc {
	return func(ctx context.Context, id string) (runtime.Model, func(), error) {
		var res *instancetype.Reservation
		if s.deps.Node != nil {
			r, err := s.deps.Node.Reserve(s.it)
			if err != nil {
				return nil, nil, err
			}
			res = r
		}
		rm, err := s.deps.Loader.Load(ctx, runtime.Spec{
			Kind: "llama", Image: m.spec.ID, ModelDir: m.spec.Path,
			Threads: s.it.Threads(s.cfg.CPUs), MemoryBytes: s.it.MemoryBytes(),
			Logger: s.log.With("model", m.spec.ID, "instance", id),
		})
		if err != nil {
			if res != nil {
				res.Release()
			}
			return nil, nil, err
		}
		lm, ok := rm.(*llama.Model)
		if !ok {
			_ = rm.Close()
			if res != nil {
				res.Release()
			}
			return nil, nil, fmt.Errorf("genai: loader returned %T, want *llama.Model", rm)
		}
		if s.deps.Ledger != nil {
			u := usage
			u.InstanceID, u.InstanceType, u.Start = id, s.it.Name, time.Now()
			s.deps.Ledger.InstanceStarted(u)
		}
		release := func() {
			if s.deps.Ledger != nil {
				s.deps.Ledger.InstanceStopped(id, time.Now())
			}
			if res != nil {
				res.Release()
			}
		}
		return &instance{m: lm}, release, nil
	}
}

// Models lists the registered models in registration order.
func (s *Service) Models() []Info {
	out := make([]Info, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.models[id].info)
	}
	return out
}

// Model returns one model's description.
func (s *Service) Model(id string) (Info, bool) {
	m, ok := s.models[id]
	if !ok {
		return Info{}, false
	}
	return m.info, true
}

// Request is one generation: a raw Prompt, or Messages rendered through
// the model's chat format.
type Request struct {
	ModelID  string
	Prompt   string
	Messages []Message
	Params   llama.Params
	Caller   string        // access key id, for the ledger
	API      string        // "bedrock" or "openai": the ledger row's variant
	Priority pool.Priority // zero: interactive (pool.Normal)
	Mode     string        // ledger mode; empty: ModeOnDemand

	// Logprobs asks for each generated token's log-probability in
	// Result.Logprobs, with TopLogprobs (0–20) most likely alternatives:
	// the model's raw distribution, before penalties, temperature and
	// filters (see llama.GenerateRequest). Tokens follow the text: the
	// end-of-generation token is left out, and so are tokens that begin
	// after a stop sequence cut the text (a token straddling the cut is
	// kept). Without Logprobs nothing is computed.
	Logprobs    bool
	TopLogprobs int
	// OnLogprobs, with Logprobs and a streaming emit, is called just
	// before each emit with the tokens whose text begins in that piece.
	OnLogprobs func([]TokenLogprob)
}

// TokenLogprob is one generated token and its log-probability.
type TokenLogprob struct {
	Token   string // the token's bytes (not always whole UTF-8 characters)
	Logprob float64
	Top     []TopLogprob // most likely first
}

// TopLogprob is one alternative token at a position.
type TopLogprob struct {
	Token   string
	Logprob float64
}

// Result is a finished generation.
type Result struct {
	Text         string
	InputTokens  int
	OutputTokens int
	FinishReason string // llama.FinishStop or llama.FinishLength
	StopSequence string // the stop sequence that ended it, if any
	Latency      time.Duration
	Logprobs     []TokenLogprob // when Request.Logprobs asked for them
}

// Errors callers branch on (all are *apierr.Error too).
var (
	// ErrUnknownModel: no foundation model has the id.
	ErrUnknownModel = errors.New("genai: unknown model")
)

// Generate runs req on its model's pool, calling emit with each piece of
// text as it is released (never empty), and meters the tokens. Errors are
// *apierr.Error: Validation for bad parameters or prompts (wording from
// the engine), NotFound (wrapping ErrUnknownModel) for an unknown model,
// Validation (wrapping ErrOnDemandCustom) for an imported model named
// directly rather than through a provisioned throughput,
// Throttled when the pool cannot take the request.
func (s *Service) Generate(ctx context.Context, req *Request, emit func(text string) error) (Result, error) {
	t0 := time.Now()
	req = batchRequest(ctx, req) // a batch line run through an interactive handler (WithBatch)
	if id, ok := strings.CutPrefix(req.ModelID, ProvisionedRef); ok {
		return s.generateProvisioned(ctx, id, req, emit)
	}
	m, ok := s.models[req.ModelID]
	if !ok {
		return Result{}, s.OnDemandError(req.ModelID) // imported models: provisioned only
	}
	c, err := s.prepare(m, req, emit)
	if err != nil {
		return Result{}, err
	}
	// Quota: one request, and the prompt's estimated tokens plus maxTokens
	// (the context when unset) reserved up front; the unused part is
	// refunded when the generation ends. Batch (low-priority) generations
	// are outside the on-demand quotas, as Bedrock's batch jobs are: they
	// only use capacity interactive traffic leaves idle.
	var held *reservation // nil: nothing to settle
	if req.Priority >= pool.Normal {
		reserve := estimateTokens(c.prompt) + req.Params.MaxTokens
		if req.Params.MaxTokens <= 0 {
			reserve = max(m.info.ContextLength, estimateTokens(c.prompt))
		}
		if held, err = s.quota.admit(req.ModelID, req.Caller, reserve); err != nil {
			return Result{}, err
		}
	}
	// Low-priority (batch) generations pass the gate that keeps a share of
	// the slots for interactive requests (priority.go).
	leave, err := m.low.enter(ctx, req.Priority)
	if err != nil {
		held.settle(0)
		return Result{}, s.poolError(err)
	}
	res, err := m.pool.Invoke(ctx, &runtime.Request{Body: c, Size: -1}, req.Priority)
	leave()
	if err != nil {
		held.settle(0)
		return Result{}, s.poolError(err)
	}
	_ = res.Body.Close()
	held.settle(c.result.InputTokens + c.result.OutputTokens)
	return s.finish(t0, c, res, ModeOnDemand, req.ModelID, req)
}

// prepare validates req against m and renders its prompt into a call.
func (s *Service) prepare(m *model, req *Request, emit func(string) error) (*call, error) {
	if req.Params.MaxTokens > m.info.ContextLength && m.info.ContextLength > 0 {
		return nil, apierr.Validationf("max tokens %d exceeds the model's context length of %d tokens", req.Params.MaxTokens, m.info.ContextLength)
	}
	if err := req.Params.Validate(); err != nil {
		return nil, apierr.Validationf("%s", err.Error())
	}
	c := &call{req: req, emit: emit, fair: m.low}
	if req.Messages != nil {
		p, err := m.chat.render(req.Messages)
		if err != nil {
			return nil, apierr.Validationf("%s", err.Error())
		}
		c.prompt, c.chat = p, true
	} else {
		c.prompt = req.Prompt
	}
	return c, nil
}

// estimateTokens is a prompt's token count before tokenizing: a quarter
// of its bytes, rounded up (quota reservations only).
func estimateTokens(prompt string) int { return (len(prompt) + 3) / 4 }

// finish turns a finished call into its Result and meters it under mode
// and resource.
func (s *Service) finish(t0 time.Time, c *call, res *pool.Result, mode, resource string, req *Request) (Result, error) {
	r := c.result
	r.Latency = time.Since(t0)
	var failure error
	status := 200
	if c.err != nil {
		failure = engineError(c.err)
		status = 500
		if apierr.As(failure).Kind == apierr.Validation {
			status = 400
		}
	}
	// Metered: what was generated. A request the engine refused before
	// generating (a prompt longer than the context) costs nothing.
	if s.deps.Ledger != nil && (c.err == nil || r.OutputTokens > 0) {
		if req.Mode != "" {
			mode = req.Mode // batch records run through the on-demand path
		}
		s.deps.Ledger.RecordInvocation(meter.Invocation{
			Time: t0, Mode: mode, Resource: resource, Variant: req.API,
			InstanceType: s.it.Name, Caller: req.Caller, ModelLatency: res.ModelLatency(),
			TotalLatency: r.Latency, Status: status, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
		})
	}
	if failure != nil {
		return r, failure
	}
	return r, nil
}

func (s *Service) poolError(err error) error {
	switch {
	case errors.Is(err, pool.ErrThrottled), errors.Is(err, pool.ErrQueueFull), errors.Is(err, pool.ErrQueueTimeout):
		return &apierr.Error{Kind: apierr.Throttled, Message: "Too many requests, please wait before trying again.", Err: err}
	case errors.Is(err, pool.ErrClosed):
		return &apierr.Error{Kind: apierr.Unavailable, Message: "The service is shutting down.", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apierr.Error{Kind: apierr.Model, Message: "The request ended before the model answered.", Err: err}
	}
	return &apierr.Error{Kind: apierr.Internal, Message: "The model could not be started.", Err: err}
}

func engineError(err error) error {
	var me *runtime.ModelError
	if errors.As(err, &me) && me.StatusCode == 400 {
		return apierr.Validationf("%s", me.Message)
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	return &apierr.Error{Kind: apierr.Internal, Message: "The model failed while generating.", Err: err}
}

// Run stops instances idle longer than the idle timeout until ctx ends.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(max(s.cfg.IdleTimeout/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, id := range s.order {
				s.models[id].pool.StopIdle(0, s.cfg.IdleTimeout, now)
			}
		}
	}
}

// Close stops every model's instances. It is idempotent.
func (s *Service) Close(ctx context.Context) error {
	var errs []error
	s.closeOnce.Do(func() {
		s.closeImports()
		errs = append(errs, s.closeProvisioned(ctx)...)
		for _, id := range s.order {
			if err := s.models[id].pool.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// call carries one generation through the pool to an instance: the pool
// hands the instance a runtime.Request whose Body is the call.
type call struct {
	req    *Request
	prompt string
	chat   bool
	emit   func(string) error
	fair   *lowGate // interactive calls pause low-priority ones (priority.go)
	result Result
	err    error
}

// Read makes a call an io.Reader (an empty body) for runtime.Request.
func (c *call) Read([]byte) (int, error) { return 0, io.EOF }

// instance is one loaded model in a pool. Invoke runs a *call's generation
// synchronously (the pool slot is held for its whole length); other
// requests go to the llama runtime's own Invoke.
type instance struct{ m *llama.Model }

func (in *instance) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	c, ok := req.Body.(*call)
	if !ok {
		return in.m.Invoke(ctx, req)
	}
	c.run(ctx, in.m)
	return &runtime.Response{Body: io.NopCloser(strings.NewReader(""))}, nil
}

func (in *instance) Close() error { return in.m.Close() }

func (c *call) run(ctx context.Context, m *llama.Model) {
	tok := m.Tokenizer()
	ids := tok.Encode(c.prompt, true)
	// A template that writes the BOS text itself must not get a second one.
	if c.chat && len(ids) >= 2 && ids[0] == tok.BOS() && ids[1] == tok.BOS() {
		ids = ids[1:]
	}
	low := c.req.Priority < pool.Normal
	if !low && c.fair != nil {
		defer c.fair.interactiveStarted()()
	}
	var text strings.Builder
	var lps logprobTrack
	greq := &llama.GenerateRequest{Tokens: ids, Params: c.req.Params, Logprobs: c.req.Logprobs, TopLogprobs: c.req.TopLogprobs}
	u, err := m.Generate(ctx, greq, func(t llama.Token) error {
		if low && c.fair != nil {
			if err := c.fair.yield(ctx); err != nil {
				return err
			}
		}
		if c.req.Logprobs {
			lps.add(tok, t)
		}
		if t.Text == "" {
			return nil
		}
		text.WriteString(t.Text)
		if c.req.Logprobs && c.req.OnLogprobs != nil && c.emit != nil {
			if news := lps.release(text.Len()); len(news) > 0 {
				c.req.OnLogprobs(news)
			}
		}
		if c.emit != nil {
			return c.emit(t.Text)
		}
		return nil
	})
	c.result = Result{Text: text.String(), InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		FinishReason: u.FinishReason, StopSequence: u.StopSequence}
	if c.req.Logprobs {
		c.result.Logprobs = lps.kept(text.Len())
	}
	c.err = err
}

// logprobTrack lines generated tokens up with the text released: each
// token's byte offset in the generated bytes, so that the tokens a text
// piece begins, and those a stop sequence cut off, are known.
type logprobTrack struct {
	recs     []TokenLogprob
	offs     []int // recs[i] begins at byte offs[i] of the generation
	bytes    int   // bytes generated so far
	reported int   // recs handed to OnLogprobs
}

func (l *logprobTrack) add(tok *llama.Tokenizer, t llama.Token) {
	if tok.IsEnd(t.ID) {
		return // never text: OpenAI and vLLM leave it out
	}
	piece := tok.Piece(t.ID)
	r := TokenLogprob{Token: string(piece), Logprob: t.Logprob}
	if len(t.Top) > 0 {
		r.Top = make([]TopLogprob, len(t.Top))
		for i, a := range t.Top {
			r.Top[i] = TopLogprob{Token: string(tok.Piece(a.ID)), Logprob: a.Logprob}
		}
	}
	l.recs = append(l.recs, r)
	l.offs = append(l.offs, l.bytes)
	l.bytes += len(piece)
}

// kept returns the tokens that begin within the first n bytes of text.
func (l *logprobTrack) kept(n int) []TokenLogprob {
	k := 0
	for k < len(l.recs) && l.offs[k] < n {
		k++
	}
	return l.recs[:k]
}

// release returns the tokens not yet reported that begin within the first
// n bytes of text.
func (l *logprobTrack) release(n int) []TokenLogprob {
	k := len(l.kept(n))
	if k <= l.reported {
		return nil
	}
	out := l.recs[l.reported:k]
	l.reported = k
	return out
}
