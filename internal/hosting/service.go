// Package hosting is SageMaker hosting: models, endpoint configs and
// endpoints, their lifecycle (Creating → InService, blue/green updates,
// deletion, restore after restart) and synchronous invocation across
// production variants. Each variant is a pool of instances; the service
// decides how many and which model, the pool runs them.
//
// hosting is reached through protocol adapters (api/...) and the
// autoscaler; it must not import either. It imports pool, runtime, catalog
// and the resource packages handed to it by the composition root.
package hosting

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime"
)

// Config holds the hosting settings; the composition root fills it from
// the validated server configuration.
type Config struct {
	Region    string
	AccountID string
	// CPUs is how many CPUs this machine has; an instance's runtime gets
	// min(its type's vCPUs, CPUs) threads.
	CPUs int
	// InstanceConcurrency is how many invocations one instance runs at once.
	InstanceConcurrency int
	// QueueLimit and QueueTimeout bound each variant's wait queue.
	QueueLimit   int
	QueueTimeout time.Duration
	// InvocationTimeout bounds one real-time invocation (SageMaker: 60 s).
	InvocationTimeout time.Duration
	// MaxPayloadBytes is the real-time request body limit (6 MB).
	MaxPayloadBytes int64
	// Serverless settings.
	Serverless ServerlessConfig
	// AsyncIdleTimeout is how long an async variant's instance may sit
	// idle before it stops (scale to zero); default 5 minutes.
	AsyncIdleTimeout time.Duration
}

// ServerlessConfig holds the serverless variants' settings.
type ServerlessConfig struct {
	// IdleTimeout is how long an instance may sit idle before it is
	// stopped (scale to zero); provisioned concurrency stays warm.
	IdleTimeout time.Duration
	// StartTimeout bounds how long an invocation waits for a cold start
	// (SageMaker: the model must load and answer /ping within 3 minutes).
	StartTimeout time.Duration
	// MaxPayloadBytes is the serverless request limit (SageMaker: 4 MB).
	MaxPayloadBytes int64
}

// Artifacts turns a ModelDataUrl into a local model directory.
type Artifacts interface {
	Check(modelDataURL string) error
	Resolve(ctx context.Context, modelDataURL string) (string, error)
}

// Observer receives per-invocation and per-variant measurements.
type Observer interface {
	Invocation(endpoint, variant string, status int, model, overhead time.Duration)
	Instances(endpoint, variant string, n int)
	// ModelSetup is a serverless cold start's duration (ModelSetupTime).
	ModelSetup(endpoint, variant string, d time.Duration)
}

// Deps are the collaborators the composition root hands to the service.
type Deps struct {
	Store     *catalog.Store
	Ledger    *meter.Ledger
	Types     *instancetype.Catalog
	Node      *instancetype.Node
	Artifacts Artifacts
	Loaders   map[string]runtime.Loader // by runtime kind
	Observer  Observer
	Logger    *slog.Logger
}

// Service owns every endpoint's pools. Create it with New, call Start to
// restore endpoints from the catalog, and Close to stop every instance.
type Service struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	ctx    context.Context // cancelled by Close: ends background operations
	cancel context.CancelFunc
	wg     sync.WaitGroup // background operations

	mu   sync.RWMutex
	live map[string]*liveEndpoint // by lower-cased endpoint name

	backlog Backlog // async queue depth; set before Start
}

// liveEndpoint is an endpoint's running state.
type liveEndpoint struct {
	name string // as created

	opMu sync.Mutex // held by the operation that changes variants
	busy bool       // an operation is in progress (guarded by Service.mu)

	mu       sync.RWMutex
	variants []*liveVariant

	// restoring, for an endpoint restored at start-up, is closed once its
	// pools are routable (or the restore failed): until then the catalog
	// already says InService, so requests wait for it rather than being
	// told the endpoint does not exist. Nil for other endpoints.
	restoring chan struct{}
}

// liveVariant is one production variant's pool and routing weight.
type liveVariant struct {
	name         string
	weight       float64
	instanceType string
	model        string
	pool         *pool.Pool
	desired      int
	// serverless is the variant's current serverless config; nil for
	// instance-based variants. Atomic: UpdateEndpointWeightsAndCapacities
	// replaces it while requests read it.
	serverless  atomic.Pointer[catalog.ServerlessConfig]
	provisioned []string // usage-ledger ids of provisioned-concurrency units
	// async variants take only InvokeAsync and scale to zero when idle.
	async bool
}

// New returns a service; nothing runs until Start.
func New(cfg Config, deps Deps) *Service {
	if cfg.InvocationTimeout <= 0 {
		cfg.InvocationTimeout = 60 * time.Second
	}
	if cfg.MaxPayloadBytes <= 0 {
		cfg.MaxPayloadBytes = 6 << 20
	}
	if cfg.InstanceConcurrency <= 0 {
		cfg.InstanceConcurrency = 4
	}
	if cfg.Serverless.IdleTimeout <= 0 {
		cfg.Serverless.IdleTimeout = 5 * time.Minute
	}
	if cfg.Serverless.StartTimeout <= 0 {
		cfg.Serverless.StartTimeout = 3 * time.Minute
	}
	if cfg.AsyncIdleTimeout <= 0 {
		cfg.AsyncIdleTimeout = 5 * time.Minute
	}
	if cfg.Serverless.MaxPayloadBytes <= 0 {
		cfg.Serverless.MaxPayloadBytes = 4 << 20
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, deps: deps, log: deps.Logger.With("component", "hosting"), ctx: ctx, cancel: cancel, live: map[string]*liveEndpoint{}}
}

// MaxPayloadBytes is the real-time request body limit.
func (s *Service) MaxPayloadBytes() int64 { return s.cfg.MaxPayloadBytes }

// AccountID is the account the ARNs name.
func (s *Service) AccountID() string { return s.cfg.AccountID }

// Start restores the endpoints in the catalog: endpoints that were
// InService come back InService and reload their instances in the
// background (invocations wait in the queue meanwhile); endpoints caught
// mid-operation by a stop are redone; Deleting endpoints finish deleting.
func (s *Service) Start(ctx context.Context) error {
	eps, err := s.deps.Store.ListEndpoints(ctx)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.reapIdle(s.ctx)
	}()
	for _, ep := range eps {
		switch ep.EndpointStatus {
		case catalog.StatusDeleting:
			if err := s.deps.Store.DeleteEndpoint(ctx, ep.EndpointName); err != nil && !errors.Is(err, catalog.ErrNotFound) {
				return err
			}
		case catalog.StatusFailed:
			// Nothing runs; DeleteEndpoint is the only operation allowed.
		default:
			le := s.register(ep.EndpointName)
			le.restoring = make(chan struct{})
			s.background(le, func(ctx context.Context) {
				s.restore(ctx, le, ep)
			})
		}
	}
	return nil
}

// restore rebuilds an endpoint's pools from its stored desired state.
func (s *Service) restore(ctx context.Context, le *liveEndpoint, ep *catalog.Endpoint) {
	var once sync.Once
	routable := func() { once.Do(func() { close(le.restoring) }) }
	defer routable()
	cfg, err := s.deps.Store.GetEndpointConfig(ctx, ep.EndpointConfigName)
	if err != nil {
		s.fail(ctx, ep.EndpointName, "restore: endpoint configuration "+ep.EndpointConfigName+": "+err.Error())
		return
	}
	states := ep.Variants
	if len(states) == 0 {
		states = initialStates(cfg)
	}
	// Serve from the pools as they load: make them routable at once.
	variants, err := s.buildVariants(ctx, ep.EndpointName, cfg, states, func(vs []*liveVariant) {
		le.mu.Lock()
		le.variants = vs
		le.mu.Unlock()
		routable()
	})
	if err != nil {
		s.closeVariants(ctx, variants)
		le.mu.Lock()
		le.variants = nil
		le.mu.Unlock()
		s.fail(ctx, ep.EndpointName, err.Error())
		return
	}
	if ep.EndpointStatus != catalog.StatusInService {
		_ = s.setStatus(ctx, ep.EndpointName, catalog.StatusInService, "", states)
	}
	s.log.Info("endpoint restored", "endpoint", ep.EndpointName)
}

// register adds a live endpoint (empty until its pools are built).
func (s *Service) register(name string) *liveEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	le := &liveEndpoint{name: name}
	s.live[strings.ToLower(name)] = le
	return le
}

func (s *Service) lookup(name string) *liveEndpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live[strings.ToLower(name)]
}

// background runs an endpoint operation on the service's context, holding
// the endpoint's operation lock.
func (s *Service) background(le *liveEndpoint, op func(ctx context.Context)) {
	s.mu.Lock()
	le.busy = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		le.opMu.Lock()
		defer le.opMu.Unlock()
		op(s.ctx)
		s.mu.Lock()
		le.busy = false
		s.mu.Unlock()
	}()
}

// Close cancels background operations, waits for them, then drains and
// stops every instance of every endpoint. Catalog records are left as they
// are, so the next Start restores them.
func (s *Service) Close(ctx context.Context) error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	live := s.live
	s.live = map[string]*liveEndpoint{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, le := range live {
		le.mu.Lock()
		vs := le.variants
		le.variants = nil
		le.mu.Unlock()
		for _, v := range vs {
			wg.Add(1)
			s.trackProvisioned(v, "", 0)
			go func() {
				defer wg.Done()
				if err := v.pool.Close(ctx); err != nil {
					s.log.Warn("close pool", "endpoint", le.name, "variant", v.name, "err", err)
				}
			}()
		}
	}
	wg.Wait()
	return nil
}

// closeVariants drains and stops pools; it finishes even if ctx is
// cancelled, since instances must not be left running.
func (s *Service) closeVariants(ctx context.Context, vs []*liveVariant) {
	ctx = context.WithoutCancel(ctx)
	for _, v := range vs {
		s.trackProvisioned(v, "", 0)
		if err := v.pool.Close(ctx); err != nil {
			s.log.Warn("close pool", "variant", v.name, "err", err)
		}
	}
}
