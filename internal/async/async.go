// Package async is the asynchronous-inference mode: InvokeEndpointAsync
// requests are validated, stored durably in the queue and answered with
// where their output will land; workers pull them as the endpoint's pool
// has capacity, stream the input from object storage through the model
// into the output object, and send success or error notifications
// through a durable outbox.
//
// Every accepted inference id is recorded in a durable index (an Index,
// the catalog's async_inferences table in production) with its status,
// so the status API answers from it and says NotFound for an id that was
// never accepted.
//
// async is reached through the protocol adapters and the composition
// root; it must not import either. It uses hosting (to reach an async
// endpoint's pools), queue, objstore, runtime and catalog (the index
// record only).
package async

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/queue"
)

// Limits from SageMaker's InvokeEndpointAsync.
const (
	MaxInlineBody         = 128000
	MaxRequestTTL         = 21600 * time.Second
	DefaultRequestTTL     = MaxRequestTTL
	MaxInvocationTimeout  = 3600 * time.Second
	DefaultInvocationTime = 900 * time.Second
	// MaxInlineResponse is the largest response a notification carries.
	MaxInlineResponse = 128 << 10
)

// Config holds the mode's settings; zero values take the defaults noted.
type Config struct {
	Region     string
	MaxDeliver int           // deliveries before a request fails; default 3 (match the queue's)
	RetryDelay time.Duration // first retry delay after a model error; doubles; default 1 s
	// MinRequestTTL is the lowest RequestTTLSeconds accepted; default 60 s.
	MinRequestTTL time.Duration
	// LeaseRenew is how often a running request's lease is extended;
	// default 10 s (keep it well under the queue's ack wait).
	LeaseRenew time.Duration
	// Topics maps SNS topic ARNs to webhook URLs.
	Topics map[string]string
	// NotifyAttempts bounds deliveries of one notification; default 10.
	NotifyAttempts int
	// NotifyBackoff is the first webhook retry delay; doubles, at most a
	// minute; default 1 s.
	NotifyBackoff time.Duration
	// CapacityPoll is how often an endpoint's worker re-reads its
	// capacity and adds or retires slots; default 2 s.
	CapacityPoll time.Duration
	// IndexRetention is how long the index keeps a finished inference's
	// record (its status); default 7 days. Pending records are kept.
	IndexRetention time.Duration
	// Now is the clock (TTL decisions, event times); default time.Now.
	Now func() time.Time
}

// Invoker is what the mode needs of hosting.
type Invoker interface {
	AsyncEndpoint(ctx context.Context, name string) (*hosting.AsyncEndpoint, error)
	InvokeAsync(ctx context.Context, in *hosting.InvokeInput) (*hosting.Invocation, error)
}

// Index is the durable record of accepted inference ids and their status
// (*catalog.Store implements it, once InitAsyncInferences ran).
//
// Why the catalog and not a JetStream KV bucket next to the queue: the
// index answers for requests long after the queue dropped them, the
// catalog is already the durable metadata of the same data directory
// (endpoints, whose names key the records, live there), and a finished
// request's record is written in one SQLite statement whose failure is
// visible at once; a KV bucket would add a second store to keep,
// prune and back up for the same rows.
type Index interface {
	PutAsyncInference(ctx context.Context, a *catalog.AsyncInference) error
	GetAsyncInference(ctx context.Context, endpoint, id string) (*catalog.AsyncInference, error)
	DeleteAsyncInference(ctx context.Context, endpoint, id string) error
}

// Pruner is an Index that also drops old finished records.
type Pruner interface {
	PruneAsyncInferences(ctx context.Context, cutoff time.Time) (int, error)
}

var _ Index = (*catalog.Store)(nil)

// Publisher sends a message on a NATS subject (nats: notification topics).
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Service is the async mode. Create it with New, Start it, Close it.
type Service struct {
	cfg     Config
	hosting Invoker
	q       queue.Queue
	objects objstore.Store
	pub     Publisher
	index   Index // nil: status falls back to object storage alone
	log     *slog.Logger
	metrics *counters

	started time.Time // when New ran: requests stored before it may have run already

	ctx    context.Context // cancelled by Close: stops workers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[string]*worker // by endpoint name
	closed  bool
}

// New returns a stopped service.
func New(cfg Config, h Invoker, q queue.Queue, objects objstore.Store, pub Publisher, log *slog.Logger) *Service {
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 3
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.MinRequestTTL <= 0 {
		cfg.MinRequestTTL = 60 * time.Second
	}
	if cfg.LeaseRenew <= 0 {
		cfg.LeaseRenew = 10 * time.Second
	}
	if cfg.NotifyAttempts <= 0 {
		cfg.NotifyAttempts = 10
	}
	if cfg.NotifyBackoff <= 0 {
		cfg.NotifyBackoff = time.Second
	}
	if cfg.CapacityPoll <= 0 {
		cfg.CapacityPoll = 2 * time.Second
	}
	if cfg.IndexRetention <= 0 {
		cfg.IndexRetention = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, hosting: h, q: q, objects: objects, pub: pub, log: log.With("component", "async"),
		metrics: newCounters(), started: time.Now(), ctx: ctx, cancel: cancel, workers: map[string]*worker{}}
}

// WithIndex makes the service record every accepted inference in idx and
// answer Status from it; call it before Start. If idx is also a Pruner,
// Start prunes finished records older than Config.IndexRetention hourly.
func (s *Service) WithIndex(idx Index) *Service {
	s.index = idx
	return s
}

// Start starts the notification sender and a worker for each named
// endpoint that is asynchronous (the endpoints restored at start-up, so
// requests queued before a restart run). Endpoints created later get a
// worker at their first request.
func (s *Service) Start(endpoints []string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runNotifier(s.ctx)
	}()
	if p, ok := s.index.(Pruner); ok {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runPruner(s.ctx, p)
		}()
	}
	for _, name := range endpoints {
		if _, err := s.hosting.AsyncEndpoint(s.ctx, name); err == nil {
			s.ensureWorker(name)
		}
	}
}

// Close stops the workers and the notifier and waits for them; running
// requests are abandoned and handed back to the queue (Nack), so a
// restart runs them again. It is idempotent.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Request is one queued invocation as stored in the queue.
type Request struct {
	InferenceID      string        `json:"id"`
	Endpoint         string        `json:"endpoint"`
	InputLocation    string        `json:"input,omitempty"`
	Inline           []byte        `json:"inline,omitempty"`
	ContentType      string        `json:"contentType,omitempty"`
	Accept           string        `json:"accept,omitempty"`
	CustomAttributes string        `json:"customAttributes,omitempty"`
	Caller           string        `json:"caller,omitempty"`
	Received         time.Time     `json:"received"`
	TTL              time.Duration `json:"ttl"`
	Timeout          time.Duration `json:"timeout"`
	OutputLocation   string        `json:"output"`
	FailureLocation  string        `json:"failure"`
	SuccessTopic     string        `json:"successTopic,omitempty"`
	ErrorTopic       string        `json:"errorTopic,omitempty"`
	InlineSuccess    bool          `json:"inlineSuccess,omitempty"`
	InlineError      bool          `json:"inlineError,omitempty"`
}

// SubmitInput is InvokeEndpointAsync's request.
type SubmitInput struct {
	EndpointName     string
	InputLocation    string
	Body             []byte // inline body (≤ 128,000 bytes), exclusive with InputLocation
	ContentType      string
	Accept           string
	CustomAttributes string
	InferenceID      string
	RequestTTL       time.Duration // 0: default
	InvocationTime   time.Duration // 0: default
	Caller           string
	Received         time.Time
}

// Accepted is what InvokeEndpointAsync answers.
type Accepted struct {
	InferenceID     string
	OutputLocation  string
	FailureLocation string
}

var (
	inferenceIDPattern = regexp.MustCompile(`\A\S[\x20-\x7e]*\z`)
	inputPattern       = regexp.MustCompile(`^s3://([^/]+)/?(.*)$`)
)

// Submit validates an async invocation and stores it durably; it returns
// only after the queue acknowledged the write.
func (s *Service) Submit(ctx context.Context, in *SubmitInput) (*Accepted, error) {
	ep, err := s.hosting.AsyncEndpoint(ctx, in.EndpointName)
	if err != nil {
		return nil, err
	}
	var problems []string
	if in.InputLocation == "" && in.Body == nil {
		return nil, apierr.Validationf("InputLocation is required (or an inline Body of at most %d bytes).", MaxInlineBody)
	}
	if in.InputLocation != "" && len(in.Body) > 0 {
		return nil, apierr.Validationf("InputLocation and Body are mutually exclusive.")
	}
	if len(in.Body) > MaxInlineBody {
		problems = append(problems, fmt.Sprintf("Value at 'body' failed to satisfy constraint: Member must have length less than or equal to %d", MaxInlineBody))
	}
	if in.InputLocation != "" && (!inputPattern.MatchString(in.InputLocation) || len(in.InputLocation) > 1024) {
		problems = append(problems, fmt.Sprintf("Value '%s' at 'inputLocation' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$", in.InputLocation))
	}
	if in.InferenceID != "" && (len(in.InferenceID) > 64 || !inferenceIDPattern.MatchString(in.InferenceID)) {
		problems = append(problems, fmt.Sprintf("Value '%s' at 'inferenceId' failed to satisfy constraint: Member must have length between 1 and 64 and satisfy regular expression pattern: \\A\\S[\\p{Print}]*\\z", in.InferenceID))
	}
	if len(in.CustomAttributes) > 1024 {
		problems = append(problems, "Value at 'customAttributes' failed to satisfy constraint: Member must have length less than or equal to 1024")
	}
	ttl, timeout := in.RequestTTL, in.InvocationTime
	if ttl == 0 {
		ttl = DefaultRequestTTL
	}
	if timeout == 0 {
		timeout = DefaultInvocationTime
	}
	if ttl < s.cfg.MinRequestTTL || ttl > MaxRequestTTL {
		problems = append(problems, fmt.Sprintf("Value '%d' at 'requestTTLSeconds' failed to satisfy constraint: Member must have value between %d and %d", int(ttl.Seconds()), int(s.cfg.MinRequestTTL.Seconds()), int(MaxRequestTTL.Seconds())))
	}
	if timeout < time.Second || timeout > MaxInvocationTimeout {
		problems = append(problems, fmt.Sprintf("Value '%d' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must have value between 1 and 3600", int(timeout.Seconds())))
	}
	if len(problems) > 0 {
		return nil, apierr.Validationf("%d validation error(s) detected: %s", len(problems), strings.Join(problems, "; "))
	}
	id := in.InferenceID
	if id == "" {
		id = newID()
	}
	received := in.Received
	if received.IsZero() {
		received = s.cfg.Now()
	}
	r := &Request{
		InferenceID: id, Endpoint: ep.Name, InputLocation: in.InputLocation, Inline: in.Body,
		ContentType: in.ContentType, Accept: in.Accept, CustomAttributes: in.CustomAttributes, Caller: in.Caller,
		Received: received.UTC(), TTL: ttl, Timeout: timeout,
	}
	r.OutputLocation, r.FailureLocation = Locations(ep.Output, id)
	if n := ep.Output.NotificationConfig; n != nil {
		r.SuccessTopic, r.ErrorTopic = n.SuccessTopic, n.ErrorTopic
		for _, w := range n.IncludeInferenceResponseIn {
			r.InlineSuccess = r.InlineSuccess || w == "SUCCESS_NOTIFICATION_TOPIC"
			r.InlineError = r.InlineError || w == "ERROR_NOTIFICATION_TOPIC"
		}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	s.ensureWorker(ep.Name)
	// The index has the id before the queue does, so a worker's final
	// status can never be overwritten by this Pending one.
	if err := s.record(ctx, r, StatusPending, ""); err != nil {
		return nil, &apierr.Error{Kind: apierr.Unavailable, Message: "The request could not be recorded; try again.", Err: err}
	}
	// The message id de-duplicates a client's retry of the same
	// InferenceId within the queue's window.
	if err := s.q.Enqueue(ctx, topicOf(ep.Name), id, body); err != nil {
		if s.index != nil {
			if derr := s.index.DeleteAsyncInference(context.WithoutCancel(ctx), r.Endpoint, id); derr != nil {
				s.log.Warn("index: forget an unqueued request", "id", id, "err", derr)
			}
		}
		return nil, &apierr.Error{Kind: apierr.Unavailable, Message: "The request could not be queued; try again.", Err: err}
	}
	s.metrics.accepted(ep.Name)
	return &Accepted{InferenceID: id, OutputLocation: r.OutputLocation, FailureLocation: r.FailureLocation}, nil
}

// Locations is where a request's output and failure objects go:
// <S3OutputPath>/<InferenceId>.out and <S3FailurePath>/<InferenceId>-error.out
// (S3FailurePath defaults to S3OutputPath). An InferenceId with slashes
// makes nested keys.
func Locations(out *hosting.AsyncOutput, id string) (output, failure string) {
	base := strings.TrimSuffix(out.S3OutputPath, "/")
	fbase := strings.TrimSuffix(out.S3FailurePath, "/")
	if fbase == "" {
		fbase = base
	}
	return base + "/" + id + ".out", fbase + "/" + id + "-error.out"
}

// topicOf is an endpoint's queue topic. Endpoint names are letters,
// digits and hyphens, so the "_" keeps them apart from other topics.
func topicOf(endpoint string) string { return "async_" + endpoint }

const notifyTopic = "asyncnotify_outbox"

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ensureWorker starts the endpoint's worker if it is not running.
func (s *Service) ensureWorker(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.workers[endpoint] != nil {
		return
	}
	w := &worker{s: s, endpoint: endpoint}
	s.workers[endpoint] = w
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w.run(s.ctx)
	}()
}

// errGone reports whether err means the endpoint no longer exists or is
// not asynchronous.
func errGone(err error) bool {
	if errors.Is(err, hosting.ErrNotAsync) {
		return true
	}
	e := apierr.As(err)
	return e.Kind == apierr.Validation || e.Kind == apierr.NotFound
}
