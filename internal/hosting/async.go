package hosting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

// Async endpoints (an endpoint config with AsyncInferenceConfig) take
// only asynchronous invocations: the async mode service pulls them from
// its queue and calls InvokeAsync. Their variants are elastic pools: each
// instance runs MaxConcurrentInvocationsPerInstance invocations; the
// pool grows from zero as the queue's worker hands it work, up to the
// variant's desired instance count (at least one), and instances idle for
// Config.AsyncIdleTimeout stop, down to zero.

// AsyncOutput is an AsyncInferenceConfig's OutputConfig.
type AsyncOutput struct {
	S3OutputPath       string              `json:"S3OutputPath,omitempty"`
	S3FailurePath      string              `json:"S3FailurePath,omitempty"`
	KmsKeyId           string              `json:"KmsKeyId,omitempty"`
	NotificationConfig *AsyncNotifications `json:"NotificationConfig,omitempty"`
}

// AsyncNotifications is an OutputConfig's NotificationConfig.
type AsyncNotifications struct {
	SuccessTopic               string   `json:"SuccessTopic,omitempty"`
	ErrorTopic                 string   `json:"ErrorTopic,omitempty"`
	IncludeInferenceResponseIn []string `json:"IncludeInferenceResponseIn,omitempty"`
}

// ParseAsyncOutput decodes an AsyncInferenceConfig's OutputConfig.
func ParseAsyncOutput(c *catalog.AsyncInferenceConfig) (*AsyncOutput, error) {
	var out AsyncOutput
	if c == nil || len(c.OutputConfig) == 0 {
		return nil, apierr.Validationf("AsyncInferenceConfig.OutputConfig is required.")
	}
	if err := json.Unmarshal(c.OutputConfig, &out); err != nil {
		return nil, apierr.Validationf("AsyncInferenceConfig.OutputConfig: %v", err)
	}
	return &out, nil
}

// AsyncConcurrency is an async config's per-instance concurrency, or def
// when the config leaves it to the platform.
func AsyncConcurrency(c *catalog.AsyncInferenceConfig, def int) int {
	if c != nil && c.ClientConfig != nil && c.ClientConfig.MaxConcurrentInvocationsPerInstance > 0 {
		return c.ClientConfig.MaxConcurrentInvocationsPerInstance
	}
	return def
}

// validateAsync checks an endpoint config's AsyncInferenceConfig.
func (s *Service) validateAsync(c *catalog.EndpointConfig) error {
	a := c.AsyncInferenceConfig
	if a == nil {
		return nil
	}
	if a.ClientConfig != nil {
		if n := a.ClientConfig.MaxConcurrentInvocationsPerInstance; n < 1 || n > 1000 {
			return apierr.Validationf("Value '%d' at 'asyncInferenceConfig.clientConfig.maxConcurrentInvocationsPerInstance' failed to satisfy constraint: Member must have value between 1 and 1000", n)
		}
	}
	out, err := ParseAsyncOutput(a)
	if err != nil {
		return err
	}
	for key, uri := range map[string]string{"s3OutputPath": out.S3OutputPath, "s3FailurePath": out.S3FailurePath} {
		if uri == "" && key == "s3FailurePath" {
			continue
		}
		if !strings.HasPrefix(uri, "s3://") || len(uri) > 512 || len(uri) <= len("s3://") {
			return apierr.Validationf("Value '%s' at 'asyncInferenceConfig.outputConfig.%s' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$", uri, key)
		}
	}
	if n := out.NotificationConfig; n != nil {
		for _, w := range n.IncludeInferenceResponseIn {
			if w != "SUCCESS_NOTIFICATION_TOPIC" && w != "ERROR_NOTIFICATION_TOPIC" {
				return apierr.Validationf("Value '%s' at 'asyncInferenceConfig.outputConfig.notificationConfig.includeInferenceResponseIn' failed to satisfy constraint: Member must satisfy enum value set: [SUCCESS_NOTIFICATION_TOPIC, ERROR_NOTIFICATION_TOPIC]", w)
			}
		}
	}
	for _, v := range c.ProductionVariants {
		if v.ServerlessConfig != nil {
			return apierr.Validationf("Asynchronous inference is not supported for the serverless production variant %q: use an InstanceType.", v.VariantName)
		}
	}
	return nil
}

// asyncPool turns a pool config into an async variant's elastic one.
func (s *Service) asyncPool(pc *pool.Config, v *liveVariant, a *catalog.AsyncInferenceConfig) {
	v.async = true
	pc.Elastic = true
	pc.Concurrency = AsyncConcurrency(a, s.cfg.InstanceConcurrency)
	pc.MaxInstances = max(v.desired, 1)
	pc.QueueTimeout = s.cfg.Serverless.StartTimeout
}

// errSyncOnAsync is SageMaker's refusal of InvokeEndpoint on an async endpoint.
func (s *Service) errSyncOnAsync(endpoint string) error {
	return apierr.Validationf("Endpoint %s of account %s is an asynchronous endpoint (its endpoint configuration has an AsyncInferenceConfig): use InvokeEndpointAsync.", endpoint, s.cfg.AccountID)
}

// ErrNotAsync is wrapped by InvokeAsync and AsyncCapacity for an endpoint
// that is not asynchronous.
var ErrNotAsync = errors.New("hosting: endpoint is not asynchronous")

// AsyncEndpoint is what the async mode service needs of an async endpoint.
type AsyncEndpoint struct {
	Name   string
	Config *catalog.AsyncInferenceConfig
	Output *AsyncOutput
	// Capacity is how many invocations its variants can run at once at
	// their current maximum size.
	Capacity int
	// Instances are the variants' ready instances now.
	Instances int
}

// AsyncEndpoint describes a live async endpoint, by exact name. The error
// is worded for InvokeEndpointAsync.
func (s *Service) AsyncEndpoint(ctx context.Context, name string) (*AsyncEndpoint, error) {
	le := s.lookup(name)
	if le == nil || le.name != name {
		return nil, s.errInvokeNotFound(name)
	}
	ep, err := s.deps.Store.GetEndpoint(ctx, name)
	if err != nil {
		return nil, s.errInvokeNotFound(name)
	}
	if ep.EndpointStatus == catalog.StatusFailed || ep.EndpointStatus == catalog.StatusDeleting {
		return nil, apierr.Validationf("Endpoint %s of account %s is in status %s.", name, s.cfg.AccountID, ep.EndpointStatus)
	}
	cfg, err := s.deps.Store.GetEndpointConfig(ctx, ep.EndpointConfigName)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: config %s: %w", name, ep.EndpointConfigName, err)
	}
	if cfg.AsyncInferenceConfig == nil {
		e := apierr.Validationf("Endpoint %s of account %s is not configured for asynchronous inference: its endpoint configuration has no AsyncInferenceConfig.", name, s.cfg.AccountID)
		e.Err = ErrNotAsync
		return nil, e
	}
	out, err := ParseAsyncOutput(cfg.AsyncInferenceConfig)
	if err != nil {
		return nil, err
	}
	per := AsyncConcurrency(cfg.AsyncInferenceConfig, s.cfg.InstanceConcurrency)
	capacity, instances := 0, 0
	le.mu.RLock()
	for _, v := range le.variants {
		capacity += per * max(v.desired, 1)
		instances += v.pool.Size()
	}
	le.mu.RUnlock()
	if capacity == 0 {
		capacity = per // still creating: the pool will take work once built
	}
	return &AsyncEndpoint{Name: name, Config: cfg.AsyncInferenceConfig, Output: out, Capacity: capacity, Instances: instances}, nil
}

// InvokeAsync runs one queued request on an async endpoint's variant (by
// weight). Unlike Invoke it has no payload cap (the body streams from
// storage) and its time limit is the caller's ctx.
func (s *Service) InvokeAsync(ctx context.Context, in *InvokeInput) (*Invocation, error) {
	if in.Received.IsZero() {
		in.Received = time.Now()
	}
	in.mode = "async"
	ctx, cancel := context.WithCancel(ctx)
	for attempt := 0; ; attempt++ {
		v, err := s.route(ctx, in)
		if err != nil {
			cancel()
			return nil, err
		}
		if !v.async {
			cancel()
			return nil, fmt.Errorf("%w: %s", ErrNotAsync, in.EndpointName)
		}
		res, err := v.pool.Invoke(ctx, in.Request, pool.Normal)
		if errors.Is(err, pool.ErrClosed) && attempt < 3 {
			continue
		}
		if err != nil {
			cancel()
			aerr := s.invokeError(ctx, in.EndpointName, v, err)
			s.recordFailure(in, v, aerr)
			return nil, aerr
		}
		return &Invocation{Variant: v.name, Response: res.Response, s: s, in: in, result: res, cancel: cancel}, nil
	}
}

// Backlog reports an async endpoint's queued requests; the composition
// root sets it to the async service's queue depth, so Stats (what the
// autoscaler reads) counts the queue as waiting invocations.
type Backlog func(endpoint string) int

// SetBacklog installs the backlog source; call it before Start.
func (s *Service) SetBacklog(b Backlog) { s.backlog = b }

// withBacklog adds an async variant's share of its endpoint's queue to
// the pool's Queued: the backlog not yet running on an instance.
func (s *Service) withBacklog(endpoint string, v *liveVariant, st pool.Stats) pool.Stats {
	if !v.async || s.backlog == nil {
		return st
	}
	if waiting := s.backlog(endpoint) - st.InFlight; waiting > st.Queued {
		st.Queued = waiting
	}
	return st
}
