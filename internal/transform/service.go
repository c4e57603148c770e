// Package transform is SageMaker batch transform: a job reads every object
// under an S3 prefix (or in a manifest), splits each into records (lines,
// RecordIO), packs them into requests (SingleRecord, MultiRecord up to
// MaxPayloadInMB), fans the requests out over a job-scoped pool of
// instances, and writes one output object per input object with the
// results in input order, atomically. It owns the job's rules: validation,
// statuses (InProgress → Completed | Failed | Stopping → Stopped),
// resumption after a restart, and the filters and joins of DataProcessing.
//
// transform is reached through protocol adapters (api/sagemaker) and the
// composition root; it must not import them. It starts instances through
// the small Hosting interface (hosting implements it), runs them in a
// pool, reads and writes through objstore, and keeps jobs in the catalog.
package transform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/pool"
)

// Hosting starts the instances of a job-scoped pool (hosting.Service).
type Hosting interface {
	StartFuncFor(ctx context.Context, modelName, instanceType, mode, resource string, env map[string]string) (pool.StartFunc, error)
	CheckCapacity(instanceType string, count int) error
}

// Config holds the transform settings.
type Config struct {
	Region    string
	AccountID string
	// PlacementTimeout is how long a job waits for the node to have room
	// for its instances before it fails; default 10 minutes.
	PlacementTimeout time.Duration
}

// Deps are the collaborators the composition root hands to the service.
type Deps struct {
	Store   *catalog.Store
	Objects objstore.Store
	Hosting Hosting
	Logger  *slog.Logger
}

// Service runs transform jobs. Create it with New, call Start to resume
// jobs in the catalog, and Close to stop running ones (they resume at the
// next Start).
type Service struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // running jobs

	mu       sync.Mutex
	running  map[string]context.CancelCauseFunc // by lower-cased job name
	progress map[string]*progress               // running jobs', by lower-cased job name
	closed   bool
}

// Causes of a running job's cancellation.
var (
	errStopped  = errors.New("stopped by StopTransformJob")
	errShutdown = errors.New("server shutting down")
)

// New returns a service; nothing runs until Start.
func New(cfg Config, deps Deps) *Service {
	if cfg.PlacementTimeout <= 0 {
		cfg.PlacementTimeout = 10 * time.Minute
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, deps: deps, log: deps.Logger.With("component", "transform"), ctx: ctx, cancel: cancel, running: map[string]context.CancelCauseFunc{}, progress: map[string]*progress{}}
}

// Start creates the job table if needed and picks up jobs a previous run
// left unfinished: InProgress jobs resume (input objects whose output this
// job already wrote are skipped), Stopping jobs finish stopping.
func (s *Service) Start(ctx context.Context) error {
	if err := s.deps.Store.InitTransformJobs(ctx); err != nil {
		return err
	}
	jobs, err := s.deps.Store.ListTransformJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		switch j.TransformJobStatus {
		case catalog.TransformInProgress:
			s.log.Info("resuming transform job", "job", j.TransformJobName)
			s.launch(j)
		case catalog.TransformStopping:
			s.launchStopped(j)
		}
	}
	return nil
}

// Close cancels running jobs without stopping them (their status stays
// InProgress so the next Start resumes them) and waits for them to wind
// down and release their instances.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.running {
		c(errShutdown)
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transform: close: %w", ctx.Err())
	}
}

var jobNamePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

func (s *Service) arn(name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:transform-job/%s", s.cfg.Region, s.cfg.AccountID, strings.ToLower(name))
}

func (s *Service) errNoJob(name string) error {
	return apierr.New(apierr.NotFound, "Could not find requested job with name %s", name)
}

// Create validates and stores a job, then starts it in the background.
func (s *Service) Create(ctx context.Context, j *catalog.TransformJob) (*catalog.TransformJob, error) {
	if err := s.validate(ctx, j); err != nil {
		return nil, err
	}
	j.TransformJobArn = s.arn(j.TransformJobName)
	j.TransformJobStatus = catalog.TransformInProgress
	j.FailureReason = ""
	j.CreationTime = catalog.Now()
	j.TransformStartTime, j.TransformEndTime = catalog.Time{}, catalog.Time{}
	if err := s.deps.Store.CreateTransformJob(ctx, j); err != nil {
		if errors.Is(err, catalog.ErrExists) {
			return nil, apierr.New(apierr.InUse, "Job name must be unique within an AWS account and region, and a job with this name already exists (%s)", j.TransformJobArn)
		}
		return nil, err
	}
	running := *j // the job's goroutine updates its copy; the caller keeps j
	s.launch(&running)
	return j, nil
}

// Describe returns a job; ResourceNotFound if there is none.
func (s *Service) Describe(ctx context.Context, name string) (*catalog.TransformJob, error) {
	j, err := s.deps.Store.GetTransformJob(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, s.errNoJob(name)
	}
	if err == nil {
		s.liveProgress(j)
	}
	return j, err
}

// List returns every job, oldest first.
func (s *Service) List(ctx context.Context) ([]*catalog.TransformJob, error) {
	js, err := s.deps.Store.ListTransformJobs(ctx)
	for _, j := range js {
		s.liveProgress(j)
	}
	return js, err
}

// Stop asks a running job to stop: it goes Stopping at once and Stopped
// when its instances are gone and the outputs it wrote are deleted.
// Stopping a job that has ended is a ValidationException; stopping one
// that is stopping is a no-op.
func (s *Service) Stop(ctx context.Context, name string) error {
	j, err := s.Describe(ctx, name)
	if err != nil {
		return err
	}
	switch j.TransformJobStatus {
	case catalog.TransformStopping:
		return nil
	case catalog.TransformInProgress:
	default:
		return apierr.Validationf("The transform job %s has already ended with status %s.", j.TransformJobName, j.TransformJobStatus)
	}
	s.mu.Lock()
	cancel := s.running[strings.ToLower(j.TransformJobName)]
	s.mu.Unlock()
	j.TransformJobStatus = catalog.TransformStopping
	if err := s.deps.Store.PutTransformJob(ctx, j); err != nil {
		return err
	}
	if cancel != nil {
		cancel(errStopped)
	} else {
		s.launchStopped(j)
	}
	return nil
}

// launch runs a job in the background on the service's context.
func (s *Service) launch(j *catalog.TransformJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	key := strings.ToLower(j.TransformJobName)
	s.running[key] = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, key)
			s.mu.Unlock()
			cancel(nil)
		}()
		s.run(ctx, j)
	}()
}

// launchStopped finishes a Stopping job that is not running.
func (s *Service) launchStopped(j *catalog.TransformJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.finishStopped(s.ctx, j, nil)
	}()
}

// setStatus records a job's new status; a terminal status sets the end time.
func (s *Service) setStatus(ctx context.Context, j *catalog.TransformJob, status, reason string) {
	j.TransformJobStatus = status
	if len(reason) > 1024 {
		reason = reason[:1021] + "..."
	}
	j.FailureReason = reason
	if status != catalog.TransformInProgress && status != catalog.TransformStopping {
		j.TransformEndTime = catalog.Now()
	}
	if err := s.deps.Store.PutTransformJob(context.WithoutCancel(ctx), j); err != nil {
		s.log.Error("record transform job status", "job", j.TransformJobName, "status", status, "err", err)
	}
}

// isCapacity says whether err is the node lacking room for an instance.
func isCapacity(err error) bool { return errors.Is(err, instancetype.ErrInsufficientCapacity) }
