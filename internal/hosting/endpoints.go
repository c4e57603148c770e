package hosting

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/pool"
)

// CreateEndpoint records the endpoint as Creating and builds its pools in
// the background; it becomes InService when every variant's instances are
// ready, or Failed with a FailureReason.
func (s *Service) CreateEndpoint(ctx context.Context, name, configName string, tags []catalog.Tag) (*catalog.Endpoint, error) {
	if err := checkEndpointName("endpointName", name); err != nil {
		return nil, err
	}
	if err := checkEndpointName("endpointConfigName", configName); err != nil {
		return nil, err
	}
	cfg, err := s.DescribeEndpointConfig(ctx, configName)
	if err != nil {
		return nil, err
	}
	now := catalog.Now()
	ep := &catalog.Endpoint{
		EndpointName:       name,
		EndpointArn:        s.arn("endpoint", name),
		EndpointConfigName: cfg.EndpointConfigName,
		EndpointStatus:     catalog.StatusCreating,
		CreationTime:       now,
		LastModifiedTime:   now,
		Variants:           initialStates(cfg),
		Tags:               tags,
	}
	if err := s.deps.Store.CreateEndpoint(ctx, ep); err != nil {
		if errors.Is(err, catalog.ErrExists) {
			return nil, apierr.Validationf("Cannot create already existing endpoint %q.", ep.EndpointArn)
		}
		return nil, err
	}
	le := s.register(name)
	s.background(le, func(ctx context.Context) {
		vs, err := s.buildVariants(ctx, name, cfg, ep.Variants, nil)
		if err != nil {
			s.closeVariants(ctx, vs)
			s.fail(ctx, name, err.Error())
			return
		}
		le.mu.Lock()
		le.variants = vs
		le.mu.Unlock()
		if err := s.setStatus(ctx, name, catalog.StatusInService, "", nil); err != nil {
			s.log.Error("endpoint status", "endpoint", name, "err", err)
		}
		s.log.Info("endpoint in service", "endpoint", name)
	})
	return ep, nil
}

func initialStates(cfg *catalog.EndpointConfig) []catalog.VariantState {
	out := make([]catalog.VariantState, 0, len(cfg.ProductionVariants))
	for _, v := range cfg.ProductionVariants {
		st := catalog.VariantState{VariantName: v.VariantName, DesiredWeight: 1}
		if v.InitialVariantWeight != nil {
			st.DesiredWeight = *v.InitialVariantWeight
		}
		if v.InitialInstanceCount != nil {
			st.DesiredInstanceCount = *v.InitialInstanceCount
		}
		st.ServerlessConfig = v.ServerlessConfig
		out = append(out, st)
	}
	return out
}

// buildVariants creates one pool per production variant and sizes each to
// its desired count, in parallel. If publish is set it is called with the
// pools before they are sized, so they can serve as instances come up.
// On error the pools built so far are returned for the caller to close.
func (s *Service) buildVariants(ctx context.Context, endpoint string, cfg *catalog.EndpointConfig, states []catalog.VariantState, publish func([]*liveVariant)) ([]*liveVariant, error) {
	byName := map[string]catalog.VariantState{}
	for _, st := range states {
		byName[st.VariantName] = st
	}
	var vs []*liveVariant
	for _, pv := range cfg.ProductionVariants {
		st, ok := byName[pv.VariantName]
		if !ok {
			st = initialStates(&catalog.EndpointConfig{ProductionVariants: []catalog.ProductionVariant{pv}})[0]
		}
		v, err := s.newVariant(ctx, endpoint, pv, st, cfg.AsyncInferenceConfig)
		if err != nil {
			return vs, err
		}
		vs = append(vs, v)
	}
	if publish != nil {
		publish(vs)
	}
	errs := make(chan error, len(vs))
	for _, v := range vs {
		go func() {
			var err error
			if v.serverless.Load() != nil {
				err = s.prepareServerless(ctx, endpoint, v)
			} else {
				err = v.pool.Resize(ctx, v.desired)
			}
			if err != nil {
				err = fmt.Errorf("variant %s: %w", v.name, err)
			}
			errs <- err
		}()
	}
	var first error
	for range vs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return vs, first
}

// newVariant builds an empty pool for a production variant.
func (s *Service) newVariant(ctx context.Context, endpoint string, pv catalog.ProductionVariant, st catalog.VariantState, async *catalog.AsyncInferenceConfig) (*liveVariant, error) {
	m, err := s.deps.Store.GetModel(ctx, pv.ModelName)
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, fmt.Errorf("variant %s: model %s does not exist", pv.VariantName, pv.ModelName)
		}
		return nil, err
	}
	var it instancetype.Type
	if pv.ServerlessConfig != nil {
		it = serverlessType(pv.ServerlessConfig.MemorySizeInMB)
	} else if it, err = s.deps.Types.Lookup(pv.InstanceType); err != nil {
		return nil, fmt.Errorf("variant %s: %w", pv.VariantName, err)
	}
	routing := pool.LeastOutstanding
	if pv.RoutingConfig != nil && pv.RoutingConfig.RoutingStrategy == "RANDOM" {
		routing = pool.Random
	}
	v := &liveVariant{name: pv.VariantName, weight: st.DesiredWeight, instanceType: pv.InstanceType, model: m.ModelName, desired: st.DesiredInstanceCount}
	startup := 0
	if pv.ContainerStartupHealthCheckTimeoutInSeconds != nil {
		startup = *pv.ContainerStartupHealthCheckTimeoutInSeconds
	}
	pc := pool.Config{
		Name:         strings.ToLower(endpoint) + "-" + strings.ToLower(pv.VariantName),
		Start:        s.startFuncMode(ledgerMode(pv, async), endpoint, pv.VariantName, m, it, startup, pv.ServerlessConfig),
		Concurrency:  s.cfg.InstanceConcurrency,
		QueueLimit:   s.cfg.QueueLimit,
		QueueTimeout: s.cfg.QueueTimeout,
		Routing:      routing,
		Logger:       s.log.With("endpoint", endpoint, "variant", pv.VariantName),
		OnChange: func() {
			if s.deps.Observer != nil {
				s.deps.Observer.Instances(endpoint, pv.VariantName, v.pool.Size())
			}
		},
	}
	if sc := st.ServerlessConfig; sc != nil {
		s.serverlessPool(&pc, endpoint, pv.VariantName, sc)
		v.serverless.Store(sc)
		v.desired = s.warmCount(sc)
	}
	if async != nil {
		s.asyncPool(&pc, v, async)
	}
	v.pool = pool.New(pc)
	return v, nil
}

// fail marks an endpoint Failed with a reason (truncated to SageMaker's 1024).
func (s *Service) fail(ctx context.Context, name, reason string) {
	if s.ctx.Err() != nil {
		// Shutting down interrupted the operation: leave the status as it
		// is, so the next Start redoes the operation instead of reporting a
		// failure the model never had.
		s.log.Warn("endpoint operation interrupted by shutdown; it resumes on restart", "endpoint", name)
		return
	}
	if len(reason) > 1024 {
		reason = reason[:1021] + "..."
	}
	s.log.Error("endpoint failed", "endpoint", name, "reason", reason)
	if err := s.setStatus(context.WithoutCancel(ctx), name, catalog.StatusFailed, reason, nil); err != nil {
		s.log.Error("endpoint status", "endpoint", name, "err", err)
	}
}

// setStatus updates an endpoint's status, failure reason and (if non-nil)
// variant states.
func (s *Service) setStatus(ctx context.Context, name, status, reason string, states []catalog.VariantState) error {
	ep, err := s.deps.Store.GetEndpoint(ctx, name)
	if err != nil {
		return err
	}
	ep.EndpointStatus = status
	ep.FailureReason = reason
	if states != nil {
		ep.Variants = states
	}
	ep.LastModifiedTime = catalog.Now()
	return s.deps.Store.PutEndpoint(ctx, ep)
}

// VariantSummary is DescribeEndpoint's ProductionVariantSummary.
type VariantSummary struct {
	VariantName          string                    `json:"VariantName"`
	CurrentWeight        float64                   `json:"CurrentWeight"`
	DesiredWeight        float64                   `json:"DesiredWeight"`
	CurrentInstanceCount int                       `json:"CurrentInstanceCount"`
	DesiredInstanceCount int                       `json:"DesiredInstanceCount"`
	DeployedImages       []DeployedImage           `json:"DeployedImages,omitempty"`
	RoutingConfig        *catalog.RoutingConfig    `json:"RoutingConfig,omitempty"`
	InstanceType         string                    `json:"-"`
	CurrentServerless    *catalog.ServerlessConfig `json:"CurrentServerlessConfig,omitempty"`
	DesiredServerless    *catalog.ServerlessConfig `json:"DesiredServerlessConfig,omitempty"`
}

// DeployedImage says which image a variant runs.
type DeployedImage struct {
	SpecifiedImage string       `json:"SpecifiedImage"`
	ResolvedImage  string       `json:"ResolvedImage"`
	ResolutionTime catalog.Time `json:"ResolutionTime"`
}

// EndpointDescription is DescribeEndpoint's output.
type EndpointDescription struct {
	EndpointName       string           `json:"EndpointName"`
	EndpointArn        string           `json:"EndpointArn"`
	EndpointConfigName string           `json:"EndpointConfigName"`
	EndpointStatus     string           `json:"EndpointStatus"`
	FailureReason      string           `json:"FailureReason,omitempty"`
	CreationTime       catalog.Time     `json:"CreationTime"`
	LastModifiedTime   catalog.Time     `json:"LastModifiedTime"`
	ProductionVariants []VariantSummary `json:"ProductionVariants,omitempty"`
}

// DescribeEndpoint returns an endpoint with per-variant current and
// desired instance counts and weights.
func (s *Service) DescribeEndpoint(ctx context.Context, name string) (*EndpointDescription, error) {
	ep, err := s.deps.Store.GetEndpoint(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, s.errNoEndpoint(name)
	}
	if err != nil {
		return nil, err
	}
	d := &EndpointDescription{
		EndpointName: ep.EndpointName, EndpointArn: ep.EndpointArn, EndpointConfigName: ep.EndpointConfigName,
		EndpointStatus: ep.EndpointStatus, FailureReason: ep.FailureReason,
		CreationTime: ep.CreationTime, LastModifiedTime: ep.LastModifiedTime,
	}
	// Read the live weights under the endpoint's lock: applyStates
	// changes them in place.
	type live struct {
		weight     float64
		pool       *pool.Pool
		serverless *catalog.ServerlessConfig
	}
	current := map[string]live{}
	if le := s.lookup(name); le != nil {
		le.mu.RLock()
		for _, v := range le.variants {
			current[v.name] = live{weight: v.weight, pool: v.pool, serverless: v.serverless.Load()}
		}
		le.mu.RUnlock()
	}
	cfg, _ := s.deps.Store.GetEndpointConfig(ctx, ep.EndpointConfigName)
	for _, st := range ep.Variants {
		vsum := VariantSummary{VariantName: st.VariantName, DesiredWeight: st.DesiredWeight, DesiredInstanceCount: st.DesiredInstanceCount}
		vsum.DesiredServerless = st.ServerlessConfig
		if v, ok := current[st.VariantName]; ok {
			vsum.CurrentWeight = v.weight
			vsum.CurrentInstanceCount = v.pool.Size()
			vsum.CurrentServerless = v.serverless
		}
		if cfg != nil {
			for _, pv := range cfg.ProductionVariants {
				if pv.VariantName != st.VariantName {
					continue
				}
				vsum.RoutingConfig = pv.RoutingConfig
				if m, err := s.deps.Store.GetModel(ctx, pv.ModelName); err == nil {
					if c := primaryContainer(m); c != nil {
						vsum.DeployedImages = []DeployedImage{{SpecifiedImage: c.Image, ResolvedImage: c.Image, ResolutionTime: ep.CreationTime}}
					}
				}
			}
		}
		d.ProductionVariants = append(d.ProductionVariants, vsum)
	}
	return d, nil
}

// ListEndpoints returns every endpoint record, oldest first.
func (s *Service) ListEndpoints(ctx context.Context) ([]*catalog.Endpoint, error) {
	return s.deps.Store.ListEndpoints(ctx)
}

// beginOp checks that an endpoint exists and is not mid-operation, and
// marks it busy. The check and the mark are atomic.
func (s *Service) beginOp(ctx context.Context, name, verb string, allowFailed bool) (*catalog.Endpoint, *liveEndpoint, error) {
	ep, err := s.deps.Store.GetEndpoint(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil, s.errNoEndpoint(name)
	}
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	le := s.live[strings.ToLower(name)]
	if ep.EndpointStatus == catalog.StatusFailed && !allowFailed {
		return nil, nil, apierr.Validationf("Cannot %s endpoint %q because it is in status Failed; DeleteEndpoint is the only operation allowed on a failed endpoint.", verb, ep.EndpointArn)
	}
	if (le != nil && le.busy) || (ep.EndpointStatus != catalog.StatusInService && ep.EndpointStatus != catalog.StatusFailed) {
		return nil, nil, apierr.Validationf("Cannot %s in-progress endpoint %q.", verb, ep.EndpointArn)
	}
	if le == nil {
		le = &liveEndpoint{name: ep.EndpointName}
		s.live[strings.ToLower(name)] = le
	}
	le.busy = true
	return ep, le, nil
}

// runOp runs a background operation on an endpoint already marked busy.
func (s *Service) runOp(le *liveEndpoint, op func(ctx context.Context)) {
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

// ledgerMode is the usage-ledger mode of a variant's instances.
func ledgerMode(pv catalog.ProductionVariant, async *catalog.AsyncInferenceConfig) string {
	switch {
	case async != nil:
		return "async"
	case pv.ServerlessConfig != nil:
		return "serverless"
	}
	return "realtime"
}
