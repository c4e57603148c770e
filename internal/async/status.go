package async

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/inferbox/inferbox/internal/objstore"
)

// Statuses of one inference, as Status reports them.
const (
	StatusPending   = "Pending"   // queued or running (or never submitted)
	StatusCompleted = "Completed" // the output object exists
	StatusFailed    = "Failed"    // the failure object exists
)

// Status is where one inference stands.
type Status struct {
	InferenceID     string
	Status          string
	OutputLocation  string
	FailureLocation string
	// FailureReason is the failure object's text when Status is Failed.
	FailureReason string
}

// Status reports an inference of an async endpoint by id. It reads the
// storage the request writes to, which is the truth a redelivery also
// consults: Completed when the output object exists, Failed when the
// failure object does, Pending otherwise. The queue keeps no index of
// finished requests, so an id that was never submitted also reads
// Pending (the locations say where it would land).
func (s *Service) Status(ctx context.Context, endpoint, id string) (*Status, error) {
	ep, err := s.hosting.AsyncEndpoint(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	st := &Status{InferenceID: id, Status: StatusPending}
	st.OutputLocation, st.FailureLocation = Locations(ep.Output, id)
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

func missing(err error) bool {
	return errors.Is(err, objstore.ErrNotFound) || errors.Is(err, objstore.ErrNoSuchBucket)
}
