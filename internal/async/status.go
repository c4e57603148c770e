package async

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
)

// Statuses of one inference, as Status reports them.
const (
	StatusPending   = "Pending"   // accepted: queued or running
	StatusCompleted = "Completed" // the output object was written
	StatusFailed    = "Failed"    // the request failed (FailureReason says why)
)

// Status is where one inference stands.
type Status struct {
	InferenceID     string
	Status          string
	OutputLocation  string
	FailureLocation string
	// FailureReason is the failure's text when Status is Failed.
	FailureReason string
}

// Status reports an inference of an async endpoint by id, from the index
// of accepted ids: an id the endpoint never accepted (or whose record was
// pruned after Config.IndexRetention) is an apierr NotFound. SageMaker has
// no such API (its clients poll the output location); this one is
// inferbox's.
//
// A record still Pending is checked against object storage, the truth a
// redelivery also consults: a worker that stopped between writing the
// result object and the index leaves the record behind its object.
// Without an index (WithIndex not called) the status is read from
// storage alone and an unknown id reads Pending.
func (s *Service) Status(ctx context.Context, endpoint, id string) (*Status, error) {
	ep, err := s.hosting.AsyncEndpoint(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	st := &Status{InferenceID: id, Status: StatusPending}
	st.OutputLocation, st.FailureLocation = Locations(ep.Output, id)
	if s.index != nil {
		rec, err := s.index.GetAsyncInference(ctx, ep.Name, id)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, apierr.New(apierr.NotFound, "Inference %s was not found: endpoint %s never accepted that InferenceId (or its record is older than the retention period).", id, ep.Name)
		}
		if err != nil {
			return nil, err
		}
		st.OutputLocation, st.FailureLocation = rec.OutputLocation, rec.FailureLocation
		if rec.Status != StatusPending {
			st.Status, st.FailureReason = rec.Status, rec.FailureReason
			return st, nil
		}
	}
	if _, err := s.objects.Head(ctx, st.OutputLocation); err == nil {
		st.Status = StatusCompleted
		return st, nil
	} else if !missing(err) {
		return nil, err
	}
	rc, _, err := s.objects.Open(ctx, st.FailureLocation, nil)
	if missing(err) {
		return st, nil
	} else if err != nil {
		return nil, err
	}
	defer rc.Close()
	reason, err := io.ReadAll(io.LimitReader(rc, MaxInlineResponse))
	if err != nil {
		return nil, err
	}
	st.Status, st.FailureReason = StatusFailed, strings.TrimSuffix(string(reason), "\n")
	return st, nil
}

// record writes a request's status to the index (a no-op without one).
func (s *Service) record(ctx context.Context, r *Request, status, reason string) error {
	if s.index == nil {
		return nil
	}
	if len(reason) > MaxInlineResponse {
		reason = reason[:MaxInlineResponse]
	}
	return s.index.PutAsyncInference(ctx, &catalog.AsyncInference{
		Endpoint: r.Endpoint, InferenceID: r.InferenceID, Status: status,
		OutputLocation: r.OutputLocation, FailureLocation: r.FailureLocation, FailureReason: reason,
		Accepted: r.Received, Updated: s.cfg.Now().UTC(),
	})
}

// finished records a request's end in the index; a failure to do so is
// logged, not fatal: Status still finds the result object.
func (s *Service) finished(ctx context.Context, r *Request, status, reason string) {
	if err := s.record(ctx, r, status, reason); err != nil {
		s.log.Warn("index: record the end of a request", "id", r.InferenceID, "status", status, "err", err)
	}
}

// runPruner drops old finished records hourly until ctx ends.
func (s *Service) runPruner(ctx context.Context, p Pruner) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := p.PruneAsyncInferences(ctx, s.cfg.Now().Add(-s.cfg.IndexRetention)); err != nil && ctx.Err() == nil {
			s.log.Warn("index: prune", "err", err)
		} else if n > 0 {
			s.log.Info("index: pruned finished inferences", "records", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func missing(err error) bool {
	return errors.Is(err, objstore.ErrNotFound) || errors.Is(err, objstore.ErrNoSuchBucket)
}
