// Package server is inferbox's composition root: it builds every
// component from the configuration, wires them together, serves every
// protocol on one listener, and owns start-up and shutdown order.
// Nothing else constructs the world.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/api/autoscaling"
	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/api/bedrock"
	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/api/openai"
	"github.com/inferbox/inferbox/internal/api/sagemaker"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/artifact"
	"github.com/inferbox/inferbox/internal/async"
	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/metrics"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/queue"
	"github.com/inferbox/inferbox/internal/runtime"
	"github.com/inferbox/inferbox/internal/runtime/llama"
	"github.com/inferbox/inferbox/internal/runtime/process"
	"github.com/inferbox/inferbox/internal/runtime/xgboost"
	"github.com/inferbox/inferbox/internal/transform"
	"github.com/prometheus/client_golang/prometheus"
)

// Server is a running inferbox. Build it with New, run it with Serve, stop
// it with Shutdown.
type Server struct {
	cfg config.Config
	log *slog.Logger

	store   *catalog.Store
	storage storage
	ledger  *meter.Ledger
	metrics *metrics.Metrics
	hosting *hosting.Service
	batch   *transform.Service
	queue   *queue.JetStream
	async   *async.Service
	genai   *genai.Service
	// genaiBatch runs Bedrock model invocation jobs and OpenAI batches.
	genaiBatch *genai.Batches
	openai     *openai.Handler // the OpenAI API, with files and batches
	scaling    *autoscale.Registry
	loop       *autoscale.Loop
	http       *http.Server

	ctx    context.Context // background loops; cancelled by Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds every component. It opens the stores; call Shutdown to close them.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Data, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	store, err := catalog.Open(ctx, filepath.Join(cfg.Data, "catalog.db"))
	if err != nil {
		return nil, err
	}
	ledger, err := meter.NewLedger(ctx, store.DB(), log.With("component", "meter"))
	if err != nil {
		store.Close()
		return nil, err
	}
	types, err := instancetype.Default()
	if err != nil {
		store.Close()
		return nil, err
	}
	var nodeOpts []instancetype.NodeOption
	if cfg.Node.EmulateAccelerators {
		nodeOpts = append(nodeOpts, instancetype.EmulateAccelerators())
	}
	node := instancetype.NewNode(cfg.Node.VCPUs, cfg.Node.MemoryMiB<<20, nodeOpts...)
	st, err := openStorage(ctx, cfg, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	cache, err := artifact.NewCache(filepath.Join(cfg.Data, "artifacts"), log.With("component", "artifact"),
		artifact.WithOpener("s3", objstore.URLOpener{Store: st.objects}))
	if err != nil {
		store.Close()
		return nil, err
	}
	instancesDir := filepath.Join(cfg.Data, "instances")
	if err := os.MkdirAll(instancesDir, 0o755); err != nil {
		store.Close()
		return nil, fmt.Errorf("instances directory: %w", err)
	}
	m := metrics.New()
	unhealthy := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "inferbox", Name: "model_server_unhealthy_replacements_total",
		Help: "Bring-your-own model server processes killed and replaced after failing hosting.unhealthy_threshold GET /ping health checks in a row.",
	})
	m.Registry().MustRegister(unhealthy)
	byo := &process.Loader{
		BaseDir:            instancesDir,
		HealthInterval:     cfg.Hosting.HealthCheckInterval.D(),
		HealthTimeout:      cfg.Hosting.HealthCheckTimeout.D(),
		UnhealthyThreshold: cfg.Hosting.UnhealthyThreshold,
		Unhealthy:          unhealthy,
	}
	ggufs := gguf.NewRegistry()
	llamaLoader := llama.NewLoader(ggufs, 0)
	h := hosting.New(hosting.Config{
		Region:              cfg.Region,
		AccountID:           cfg.AccountID,
		CPUs:                goruntime.NumCPU(),
		InstanceConcurrency: cfg.Hosting.InstanceConcurrency,
		QueueLimit:          cfg.Hosting.QueueLimit,
		QueueTimeout:        cfg.Hosting.QueueTimeout.D(),
		InvocationTimeout:   cfg.Hosting.InvocationTimeout.D(),
		MaxPayloadBytes:     cfg.Hosting.MaxPayloadBytes,
		Serverless: hosting.ServerlessConfig{
			IdleTimeout:     cfg.Hosting.ServerlessIdleTimeout.D(),
			StartTimeout:    cfg.Hosting.ServerlessStartTimeout.D(),
			MaxPayloadBytes: cfg.Hosting.ServerlessMaxPayloadBytes,
		},
		AsyncIdleTimeout: cfg.Async.IdleTimeout.D(),
	}, hosting.Deps{
		Store:     store,
		Ledger:    ledger,
		Types:     types,
		Node:      node,
		Artifacts: cache,
		Loaders: map[string]runtime.Loader{
			hosting.KindXGBoost: xgboost.NewLoader(),
			hosting.KindProcess: byo,
			hosting.KindLlama:   llamaLoader,
		},
		Observer: m,
		Logger:   log,
	})
	if cfg.Examples {
		if err := withExampleFoundationModel(&cfg); err != nil {
			store.Close()
			return nil, fmt.Errorf("example foundation model: %w", err)
		}
	}
	gen, err := newGenAI(cfg, genai.Deps{Loader: llamaLoader, Registry: ggufs, Types: types, Node: node, Ledger: ledger, Logger: log,
		Provisioned: store, Imports: store, Objects: st.objects})
	if err != nil {
		store.Close()
		return nil, err
	}
	loop, err := autoscale.NewLoop(h, h, autoscale.SystemClock(), autoscale.Timing{
		Period:                  cfg.Autoscale.Period.D(),
		HighResolutionPeriod:    min(10*time.Second, cfg.Autoscale.Period.D()),
		ScaleOutDatapoints:      cfg.Autoscale.ScaleOutDatapoints,
		ScaleInDatapoints:       cfg.Autoscale.ScaleInDatapoints,
		DefaultScaleOutCooldown: cfg.Autoscale.ScaleOutCooldown.D(),
		DefaultScaleInCooldown:  cfg.Autoscale.ScaleInCooldown.D(),
		Tick:                    cfg.Autoscale.Tick.D(),
	}, log.With("component", "autoscale"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("config: autoscale: %w", err)
	}
	scaling := autoscale.NewRegistry(store, loop, h.CheckVariant, cfg.Region, cfg.AccountID)
	q, err := openQueue(ctx, cfg, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := store.InitModelJobs(ctx); err != nil {
		store.Close()
		return nil, err
	}
	if err := store.InitAsyncInferences(ctx); err != nil {
		store.Close()
		return nil, err
	}
	as := newAsync(cfg, h, q, st, log).WithIndex(store)
	m.Registry().MustRegister(as.Collector())
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	batch := transform.New(transform.Config{Region: cfg.Region, AccountID: cfg.AccountID},
		transform.Deps{Store: store, Objects: st.objects, Hosting: h, Logger: log})
	if err := store.InitOpenAIFiles(ctx); err != nil {
		cancel()
		store.Close()
		return nil, err
	}
	internal, err := internalPrefix(ctx, cfg, st)
	if err != nil {
		cancel()
		store.Close()
		return nil, err
	}
	// The OpenAI handler and the batch runner need each other: the
	// "openai" job format runs lines through the handler, whose Batch API
	// submits to the runner.
	oai := openai.New(gen, cfg.Auth.AccessKeys, log).WithFiles(store, st.objects, internal+"openai/")
	genaiBatch := genai.NewBatches(store, st.objects, map[string]genai.BatchFormat{
		bedrock.BatchKind: &bedrock.BatchFormat{Svc: gen, Objects: st.objects},
		openai.BatchKind:  oai.BatchFormat(),
	}, 0, log).WithParts(internal + "batch-progress/")
	oai.WithBatches(genaiBatch)
	s := &Server{cfg: cfg, log: log, store: store, storage: st, ledger: ledger, metrics: m, hosting: h, batch: batch, queue: q, async: as, genai: gen, genaiBatch: genaiBatch, openai: oai, scaling: scaling, loop: loop, ctx: bg, cancel: cancel}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// routes builds the one handler every protocol shares.
func (s *Server) routes() http.Handler {
	verifier := awsproto.NewVerifier(awsproto.Credentials(s.cfg.Auth.AccessKeys), s.cfg.Hosting.MaxPayloadBytes)
	control := sagemaker.Control(s.hosting, s.log)
	sagemaker.RegisterTransform(control, s.batch)
	rt := sagemaker.NewRuntime(s.hosting, s.log).WithAsync(s.async)
	jsonServices := []*awsproto.JSONService{control, autoscaling.Service(s.scaling, s.log)}

	s3 := s.s3Handler(verifier)
	aws := http.NewServeMux()
	rt.Register(aws)
	br := bedrock.New(s.genai, s.cfg.Region, s.log).WithAccount(s.cfg.AccountID)
	br.Register(aws)
	bedrock.NewBatch(br, s.genaiBatch, s.cfg.Region, s.cfg.AccountID).Register(aws)
	aws.Handle("/", s3Fallback(s3))
	aws.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		for _, svc := range jsonServices {
			if svc.Handles(target) {
				svc.ServeHTTP(w, r)
				return
			}
		}
		awsproto.WriteJSONError(w, authCodes, &apierr.Error{Kind: apierr.Validation, Code: "UnknownOperationException",
			Message: fmt.Sprintf("The target %q is not an operation inferbox serves.", target)}, s.log)
	})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	nat := native.New(s.hosting, s.scaling, s.cfg.Auth.AccessKeys, s.log)
	nat.RegisterTransform(s.batch)
	nat.RegisterAsync(s.async)
	nat.RegisterCost(s.ledger, s.cfg.Pricebook)
	mux.Handle(native.Prefix, nat)
	// The OpenAI-compatible API authenticates with Bearer keys, not SigV4.
	mux.Handle(openai.Prefix, s.openai)
	mux.Handle("/", withRequestID(signed(verifier, aws, func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Header.Get("X-Amz-Target") != "" {
			awsproto.WriteJSONError(w, authCodes, err, s.log)
		} else {
			awsproto.WriteRESTError(w, authCodes, err, s.log)
		}
	})))
	return withS3(s3, mux)
}

// Serve restores endpoints, deploys the examples if configured, starts
// background loops and serves on ln until ctx is cancelled; then it shuts
// down in order.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.ledger.Run(s.ctx)
	}()
	if err := s.hosting.Start(ctx); err != nil {
		return fmt.Errorf("restore endpoints: %w", err)
	}
	if err := s.batch.Start(ctx); err != nil {
		return fmt.Errorf("resume transform jobs: %w", err)
	}
	if err := s.genaiBatch.Start(ctx); err != nil {
		return fmt.Errorf("resume model invocation jobs: %w", err)
	}
	if err := s.startAsync(ctx); err != nil {
		return fmt.Errorf("start async workers: %w", err)
	}
	if err := s.scaling.Restore(ctx); err != nil {
		return fmt.Errorf("restore scaling policies: %w", err)
	}
	// Imported models first: provisioned throughputs may serve them.
	if err := s.genai.RestoreImported(ctx); err != nil {
		return fmt.Errorf("restore imported models: %w", err)
	}
	if err := s.genai.RestoreProvisioned(ctx); err != nil {
		return fmt.Errorf("restore provisioned throughputs: %w", err)
	}
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		s.loop.Run(s.ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.genai.Run(s.ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.expireFiles(s.ctx)
	}()
	if s.cfg.Examples {
		if err := s.deployExamples(ctx); err != nil {
			s.log.Error("deploy examples", "err", err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	s.log.Info("inferbox serving", "addr", ln.Addr().String(), "data", s.cfg.Data)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			_ = s.Shutdown(context.WithoutCancel(ctx))
			return err
		}
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout.D())
	defer cancel()
	return s.Shutdown(sctx)
}

// Shutdown stops inferbox in order: stop accepting connections and drain
// in-flight requests; stop background loops; stop transform jobs (they
// stay InProgress, to resume at the next start) and the async workers
// (their running requests go back to the queue); stop the foundation
// models' instances, then every endpoint instance;
// close the queue; flush the usage ledger; close the catalog. It is
// idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.log.Info("shutting down")
		var errs []error
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain requests: %w", err))
		}
		s.cancel() // autoscaler and ledger loops
		s.wg.Wait()
		// Transform jobs and async workers before hosting: they use pools
		// whose instances hosting started, which must be gone first.
		if err := s.batch.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop transform jobs: %w", err))
		}
		if err := s.async.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop async workers: %w", err))
		}
		if err := s.genaiBatch.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop model invocation jobs: %w", err))
		}
		if err := s.genai.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop foundation models: %w", err))
		}
		if err := s.hosting.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop instances: %w", err))
		}
		s.queue.Close()
		if err := s.ledger.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close ledger: %w", err))
		}
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close catalog: %w", err))
		}
		s.shutdownErr = errors.Join(errs...)
		s.log.Info("stopped")
	})
	return s.shutdownErr
}

// newGenAI builds the foundation-model service from the configuration.
// internalBucket holds the server's own objects in the embedded store:
// OpenAI files (openai/files/) and batch jobs' progress (batch-progress/).
const internalBucket = "inferbox-internal"

// internalPrefix is where the server keeps its own objects: the internal
// bucket of the embedded store (created if missing), or a directory under
// the data directory when s3:// is an external service.
func internalPrefix(ctx context.Context, cfg config.Config, st storage) (string, error) {
	if st.embedded == nil {
		dir := filepath.Join(cfg.Data, "internal")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("internal storage: %w", err)
		}
		return dir + "/", nil
	}
	if err := st.embedded.CreateBucket(ctx, internalBucket); err != nil && !errors.Is(err, objstore.ErrBucketExists) {
		return "", fmt.Errorf("internal storage: bucket %s: %w", internalBucket, err)
	}
	return "s3://" + internalBucket + "/", nil
}

func newGenAI(cfg config.Config, deps genai.Deps) (*genai.Service, error) {
	specs := make([]genai.ModelSpec, len(cfg.FoundationModels))
	for i, fm := range cfg.FoundationModels {
		specs[i] = genai.ModelSpec{ID: fm.ID, Path: fm.Path, Provider: fm.Provider, ChatFormat: fm.ChatFormat}
	}
	return genai.New(genai.Config{
		Models:           specs,
		InstanceType:     cfg.GenAI.InstanceType,
		Concurrency:      cfg.GenAI.Concurrency,
		MaxInstances:     cfg.GenAI.MaxInstances,
		IdleTimeout:      cfg.GenAI.IdleTimeout.D(),
		QueueTimeout:     cfg.Hosting.QueueTimeout.D(),
		CPUs:             goruntime.NumCPU(),
		Quotas:           quotasOf(cfg.GenAI.Quotas),
		ProvisionedQueue: cfg.GenAI.ProvisionedQueue,
		ImportDir:        filepath.Join(cfg.Data, "imported-models"),
	}, deps)
}

func quotasOf(q config.GenAIQuotas) genai.Quotas {
	out := genai.Quotas{Default: genai.Quota(q.GenAIQuota), Models: map[string]genai.Quota{}}
	for id, m := range q.Models {
		out.Models[id] = genai.Quota(m)
	}
	return out
}

// expireFiles deletes expired OpenAI files (their bytes) once a minute
// until ctx ends; requests stop seeing a file the moment it expires.
func (s *Server) expireFiles(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if n, err := s.openai.ExpireFiles(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("expire OpenAI files", "err", err)
		} else if n > 0 {
			s.log.Info("expired OpenAI files deleted", "files", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
