package hosting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime"
)

// InvokeInput is one real-time invocation.
type InvokeInput struct {
	RequestID     string // the protocol's request id, for messages
	EndpointName  string
	TargetVariant string
	Caller        string    // access key id, for the usage ledger
	Received      time.Time // when the request arrived, for OverheadLatency
	Request       *runtime.Request

	mode string // usage-ledger mode when not the variant's own ("async")
}

// Invocation is a running invocation: the model's response streams from
// Body. The caller must call Finish once it has written the response (or
// given up), which closes Body and records metrics and usage.
type Invocation struct {
	Variant string
	*runtime.Response
	// Serverless is set when the variant is serverless; ColdStart is then
	// the load time of the instance this request waited for (zero if it
	// found a warm one).
	Serverless bool
	ColdStart  time.Duration

	s        *Service
	in       *InvokeInput
	result   *pool.Result
	memoryMB int
	cancel   context.CancelFunc
	once     sync.Once
}

// Finish closes the response and records the invocation; status is what
// the caller sent (200, or the error's status if streaming broke).
func (iv *Invocation) Finish(status int) {
	iv.once.Do(func() {
		_ = iv.Body.Close()
		iv.cancel()
		model := iv.result.ModelLatency()
		iv.s.record(iv.in, iv.Variant, iv.memoryMB, status, model, iv.Usage)
	})
}

// Invoke routes a request to one variant of an InService endpoint (by
// TargetVariant, else at random by weight) and returns its response.
// Errors are *apierr.Error worded as SageMaker's runtime words them.
func (s *Service) Invoke(ctx context.Context, in *InvokeInput) (*Invocation, error) {
	if in.Received.IsZero() {
		in.Received = time.Now()
	}
	if in.Request.Size > s.cfg.MaxPayloadBytes {
		return nil, &apierr.Error{Kind: apierr.PayloadTooLarge, Message: fmt.Sprintf("HTTP content length exceeded %d bytes.", s.cfg.MaxPayloadBytes)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.InvocationTimeout)
	for attempt := 0; ; attempt++ {
		v, err := s.route(ctx, in)
		if err != nil {
			cancel()
			return nil, err
		}
		if v.async {
			cancel()
			return nil, s.errSyncOnAsync(in.EndpointName)
		}
		var limited *limitedBody
		if v.serverless.Load() != nil {
			if in.Request.Size > s.cfg.Serverless.MaxPayloadBytes {
				cancel()
				return nil, apierr.Validationf("Request %s has oversize body.", in.RequestID)
			}
			if in.Request.Size < 0 && attempt == 0 {
				// A body of unknown length (chunked) is cut off at the limit.
				limited = &limitedBody{r: in.Request.Body, left: s.cfg.Serverless.MaxPayloadBytes}
				in.Request.Body = limited
			}
		}
		res, err := v.pool.Invoke(ctx, in.Request, pool.Normal)
		if err != nil && limited != nil && limited.over {
			cancel()
			return nil, apierr.Validationf("Request %s has oversize body.", in.RequestID)
		}
		if errors.Is(err, pool.ErrClosed) && attempt < 3 {
			// The variant was replaced (blue/green switch, scale-in) between
			// routing and acquiring an instance: route again.
			continue
		}
		if err != nil {
			cancel()
			aerr := s.invokeError(ctx, in.EndpointName, v, err)
			s.recordFailure(in, v, aerr)
			return nil, aerr
		}
		iv := &Invocation{Variant: v.name, Response: res.Response, s: s, in: in, result: res, cancel: cancel}
		if sc := v.serverless.Load(); sc != nil {
			iv.Serverless, iv.ColdStart, iv.memoryMB = true, res.ColdStart, sc.MemorySizeInMB
		}
		return iv, nil
	}
}

// route picks the variant for a request.
func (s *Service) route(ctx context.Context, in *InvokeInput) (*liveVariant, error) {
	le := s.lookup(in.EndpointName)
	if le == nil || le.name != in.EndpointName {
		// SageMaker matches the endpoint name's case at invoke time.
		return nil, s.errInvokeNotFound(in.EndpointName)
	}
	if le.restoring != nil {
		// Restored at start-up: wait until its pools are routable.
		select {
		case <-le.restoring:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	le.mu.RLock()
	defer le.mu.RUnlock()
	if len(le.variants) == 0 {
		ep, err := s.deps.Store.GetEndpoint(ctx, in.EndpointName)
		if err == nil && ep.EndpointStatus == catalog.StatusFailed {
			return nil, apierr.Validationf("Endpoint %s of account %s is in status Failed: %s", in.EndpointName, s.cfg.AccountID, ep.FailureReason)
		}
		if err == nil && ep.EndpointStatus == catalog.StatusCreating {
			return nil, apierr.Validationf("Endpoint %s of account %s is not in service yet (status Creating).", in.EndpointName, s.cfg.AccountID)
		}
		return nil, s.errInvokeNotFound(in.EndpointName)
	}
	if in.TargetVariant != "" {
		for _, v := range le.variants {
			if v.name == in.TargetVariant {
				return v, nil
			}
		}
		return nil, apierr.Validationf("Variant %s not found for endpoint %s of account %s.", in.TargetVariant, in.EndpointName, s.cfg.AccountID)
	}
	var total float64
	for _, v := range le.variants {
		total += v.weight
	}
	if total <= 0 {
		return le.variants[0], nil
	}
	r := rand.Float64() * total
	for _, v := range le.variants {
		if r < v.weight {
			return v, nil
		}
		r -= v.weight
	}
	return le.variants[len(le.variants)-1], nil
}

// invokeError maps a pool or runtime failure to SageMaker's runtime errors.
func (s *Service) invokeError(ctx context.Context, endpoint string, v *liveVariant, err error) error {
	var me *runtime.ModelError
	switch {
	case errors.As(err, &me):
		kind := "server"
		if me.StatusCode >= 400 && me.StatusCode < 500 {
			kind = "client"
		}
		return &apierr.Error{
			Kind:               apierr.Model,
			Message:            fmt.Sprintf("Received %s error (%d) from primary with message %q. See the inferbox server log (endpoint=%s) for more information.", kind, me.StatusCode, me.Message, endpoint),
			OriginalStatusCode: me.StatusCode,
			OriginalMessage:    me.Message,
			Err:                err,
		}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		msg := "Your invocation timed out while waiting for a response from container primary. Review the latency metrics for each container, resolve the issue, and try again."
		return &apierr.Error{Kind: apierr.Model, Message: fmt.Sprintf("Received server error (0) from primary with message %q.", msg), OriginalStatusCode: 0, OriginalMessage: msg, Err: err}
	case errors.Is(err, pool.ErrThrottled) && v.serverless.Load() != nil:
		return &apierr.Error{Kind: apierr.Throttled, Message: fmt.Sprintf("Rate exceeded: endpoint %s is at its MaxConcurrency of %d concurrent invocations.", endpoint, v.serverless.Load().MaxConcurrency), Err: err}
	case errors.Is(err, pool.ErrQueueFull), errors.Is(err, pool.ErrQueueTimeout), errors.Is(err, pool.ErrThrottled):
		return &apierr.Error{Kind: apierr.Throttled, Message: "Rate exceeded: every instance of the endpoint is busy. Try again later.", Err: err}
	case errors.Is(err, pool.ErrClosed):
		return &apierr.Error{Kind: apierr.Unavailable, Message: "The endpoint is shutting down or being replaced. Try again.", Err: err}
	case errors.Is(err, context.Canceled):
		return &apierr.Error{Kind: apierr.Validation, Message: "The request was cancelled by the client.", Err: err}
	}
	return apierr.As(err)
}

// record writes metrics and a usage-ledger row for a finished invocation.
func (s *Service) record(in *InvokeInput, variant string, memoryMB, status int, model time.Duration, usage func() (int, int)) {
	mode := "realtime"
	switch {
	case in.mode != "":
		mode = in.mode
	case memoryMB > 0:
		mode = "serverless"
	}
	total := time.Since(in.Received)
	overhead := total - model
	if overhead < 0 {
		overhead = 0
	}
	if s.deps.Observer != nil {
		s.deps.Observer.Invocation(in.EndpointName, variant, status, model, overhead)
	}
	if s.deps.Ledger != nil {
		inv := meter.Invocation{
			Time: in.Received, Mode: mode, Resource: in.EndpointName, Variant: variant, MemoryMB: memoryMB,
			Caller: in.Caller, ModelLatency: model, TotalLatency: total, Status: status, BytesIn: in.Request.Size,
		}
		if usage != nil {
			inv.InputTokens, inv.OutputTokens = usage()
		}
		s.deps.Ledger.RecordInvocation(inv)
	}
}

func (s *Service) recordFailure(in *InvokeInput, v *liveVariant, err error) {
	memoryMB := 0
	if sc := v.serverless.Load(); sc != nil {
		memoryMB = sc.MemorySizeInMB
	}
	status := 500
	if e := apierr.As(err); e.Kind == apierr.Model {
		// Count by what the model answered, as SageMaker's 4XX/5XX metrics do.
		status = e.OriginalStatusCode
		if status < 400 {
			status = 500
		}
	} else if e.Kind == apierr.Throttled || e.Kind == apierr.Validation {
		status = 400
	}
	s.record(in, v.name, memoryMB, status, 0, nil)
}

// limitedBody fails a read past its limit and remembers that it did.
type limitedBody struct {
	r    io.Reader
	left int64
	over bool
}

// errOversize is the read error past a serverless body's limit.
var errOversize = errors.New("request body over the payload limit")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe: a body that ends exactly at the limit is fine.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			b.over = true
			return 0, errOversize
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
