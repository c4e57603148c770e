package native

import (
	"context"
	"net/http"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/transform"
)

// Batch transform routes. Bodies are the catalog's TransformJob (SageMaker's
// member names, plus inferbox's Progress on the way out).

// TransformJobList is GET /api/v1/transform-jobs.
type TransformJobList struct {
	TransformJobs []*catalog.TransformJob `json:"TransformJobs"`
}

// TransformJobPath is the path of a transform job ("" for the collection).
func TransformJobPath(name string) string { return join("transform-jobs", name) }

// RegisterTransform adds the transform-job routes over t. The composition
// root calls it once, before serving.
func (a *API) RegisterTransform(t *transform.Service) {
	tr := &transformRoutes{t: t}
	a.handle("GET "+Prefix+"transform-jobs", tr.list)
	a.handle("POST "+Prefix+"transform-jobs", tr.create)
	a.handle("GET "+Prefix+"transform-jobs/{name}", tr.describe)
	a.handle("POST "+Prefix+"transform-jobs/{name}/stop", tr.stop)
}

type transformRoutes struct{ t *transform.Service }

func (tr *transformRoutes) list(r *http.Request) (int, any, error) {
	js, err := tr.t.List(r.Context())
	if err != nil {
		return 0, nil, err
	}
	if js == nil {
		js = []*catalog.TransformJob{}
	}
	return http.StatusOK, TransformJobList{TransformJobs: js}, nil
}

func (tr *transformRoutes) create(r *http.Request) (int, any, error) {
	var in catalog.TransformJob
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	j, err := tr.t.Create(r.Context(), &in)
	return http.StatusCreated, j, err
}

func (tr *transformRoutes) describe(r *http.Request) (int, any, error) {
	j, err := tr.t.Describe(r.Context(), r.PathValue("name"))
	return http.StatusOK, j, err
}

func (tr *transformRoutes) stop(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if err := tr.t.Stop(r.Context(), name); err != nil {
		return 0, nil, err
	}
	j, err := tr.t.Describe(r.Context(), name)
	return http.StatusOK, j, err
}

// CreateTransformJob starts a transform job.
func (c *Client) CreateTransformJob(ctx context.Context, j *catalog.TransformJob) (*catalog.TransformJob, error) {
	return callT[catalog.TransformJob](ctx, c, http.MethodPost, TransformJobPath(""), j)
}

// DescribeTransformJob returns a job with its progress.
func (c *Client) DescribeTransformJob(ctx context.Context, name string) (*catalog.TransformJob, error) {
	return callT[catalog.TransformJob](ctx, c, http.MethodGet, TransformJobPath(name), nil)
}

// ListTransformJobs returns every job, oldest first.
func (c *Client) ListTransformJobs(ctx context.Context) ([]*catalog.TransformJob, error) {
	l, err := callT[TransformJobList](ctx, c, http.MethodGet, TransformJobPath(""), nil)
	if err != nil {
		return nil, err
	}
	return l.TransformJobs, nil
}

// StopTransformJob asks a job to stop and returns it (Stopping, usually).
func (c *Client) StopTransformJob(ctx context.Context, name string) (*catalog.TransformJob, error) {
	return callT[catalog.TransformJob](ctx, c, http.MethodPost, TransformJobPath(name)+"/stop", nil)
}
