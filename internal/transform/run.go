package transform

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime"
	"github.com/inferbox/inferbox/internal/runtime/process"
)

// metaJob is the output objects' metadata naming the job run that wrote
// them, so a resumed job skips finished inputs and a stopped one deletes
// only its own outputs.
const metaJob = "inferbox-transform-job"

// input is one input object and where its output goes.
type input struct {
	uri, out string
	size     int64
}

// params are a job's effective settings.
type params struct {
	multi      bool
	limit      int64 // bytes; 0 with SplitType None streams the object
	concurrent int   // per instance
	timeout    time.Duration
	retries    int
}

// execParamser is a runtime that answers GET /execution-parameters.
type execParamser interface {
	ExecutionParameters(ctx context.Context) (process.ExecutionParameters, bool, error)
}

func jobTag(j *catalog.TransformJob) string {
	return j.TransformJobArn + "@" + strconv.FormatInt(j.CreationTime.UnixMilli(), 10)
}

// run executes a job to its end, or until ctx is cancelled.
func (s *Service) run(ctx context.Context, j *catalog.TransformJob) {
	log := s.log.With("job", j.TransformJobName)
	if j.TransformStartTime.IsZero() {
		j.TransformStartTime = catalog.Now()
		s.setStatus(ctx, j, catalog.TransformInProgress, "")
	}
	pr := &progress{started: time.Now()}
	defer s.untrack(j)
	written, reason := s.execute(ctx, j, pr)
	j.Progress = pr.final()
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStopped):
		s.finishStopped(ctx, j, written)
	case errors.Is(cause, errShutdown):
		log.Info("transform job interrupted; it resumes at the next start")
	case reason != "":
		log.Warn("transform job failed", "reason", reason)
		s.setStatus(ctx, j, catalog.TransformFailed, reason)
	default:
		log.Info("transform job completed", "outputs", len(written))
		s.setStatus(ctx, j, catalog.TransformCompleted, "")
	}
}

// finishStopped deletes the outputs the job wrote (SageMaker keeps no
// output of a stopped job) and records Stopped. written nil means "find
// them": list the output path for objects tagged with this job.
func (s *Service) finishStopped(ctx context.Context, j *catalog.TransformJob, written []string) {
	ctx = context.WithoutCancel(ctx)
	if written == nil {
		written = s.taggedOutputs(ctx, j)
	}
	for _, uri := range written {
		if err := s.deps.Objects.Delete(ctx, uri); err != nil {
			s.log.Warn("delete output of stopped job", "job", j.TransformJobName, "uri", uri, "err", err)
		}
	}
	s.setStatus(ctx, j, catalog.TransformStopped, "")
}

func (s *Service) taggedOutputs(ctx context.Context, j *catalog.TransformJob) []string {
	var out []string
	prefix := strings.TrimSuffix(j.TransformOutput.S3OutputPath, "/") + "/"
	tag := jobTag(j)
	_ = listAll(ctx, s.deps.Objects, prefix, func(o objstore.Info) error {
		if info, err := s.deps.Objects.Head(ctx, o.URI); err == nil && info.Metadata[metaJob] == tag {
			out = append(out, o.URI)
		}
		return nil
	})
	return out
}

func listAll(ctx context.Context, st objstore.Store, prefix string, fn func(objstore.Info) error) error {
	token := ""
	for {
		page, err := st.List(ctx, prefix, objstore.ListOptions{Token: token})
		if err != nil {
			return err
		}
		for _, o := range page.Objects {
			if o.URI == "" {
				o.URI = o.Key
			}
			if err := fn(o); err != nil {
				return err
			}
		}
		if page.NextToken == "" {
			return nil
		}
		token = page.NextToken
	}
}

// inputs lists the job's input objects with their output URIs.
func (s *Service) inputs(ctx context.Context, j *catalog.TransformJob) ([]input, error) {
	ds := j.TransformInput.DataSource.S3DataSource
	outBase := strings.TrimSuffix(j.TransformOutput.S3OutputPath, "/") + "/"
	var ins []input
	if ds.S3DataType == "ManifestFile" {
		rc, _, err := s.deps.Objects.Open(ctx, ds.S3Uri, nil)
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %v", ds.S3Uri, err)
		}
		var entries []json.RawMessage
		err = json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(&entries)
		rc.Close()
		if err != nil || len(entries) == 0 {
			return nil, fmt.Errorf("manifest %s is not a JSON array [{\"prefix\": \"s3://...\"}, \"key\", ...]: %v", ds.S3Uri, err)
		}
		var head struct{ Prefix string }
		if err := json.Unmarshal(entries[0], &head); err != nil || head.Prefix == "" {
			return nil, fmt.Errorf("manifest %s: the first entry must be {\"prefix\": \"s3://...\"}", ds.S3Uri)
		}
		for _, e := range entries[1:] {
			var rel string
			if err := json.Unmarshal(e, &rel); err != nil {
				return nil, fmt.Errorf("manifest %s: entry %s is not a string", ds.S3Uri, e)
			}
			uri := head.Prefix + rel
			info, err := s.deps.Objects.Head(ctx, uri)
			if err != nil {
				return nil, fmt.Errorf("manifest %s: entry %s: %v", ds.S3Uri, uri, err)
			}
			ins = append(ins, input{uri: uri, out: outBase + rel + ".out", size: info.Size})
		}
		return ins, nil
	}
	// Outputs keep the key's path below the prefix's last "/".
	base := ds.S3Uri[:strings.LastIndex(ds.S3Uri, "/")+1]
	if l, _ := objstore.Parse(ds.S3Uri); l.Scheme == "s3" && !strings.Contains(l.Key, "/") {
		base = objstore.S3URI(l.Bucket, "")
	}
	err := listAll(ctx, s.deps.Objects, ds.S3Uri, func(o objstore.Info) error {
		if strings.HasSuffix(o.URI, "/") {
			return nil
		}
		ins = append(ins, input{uri: o.URI, out: outBase + relKey(base, o.URI) + ".out", size: o.Size})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %v", ds.S3Uri, err)
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("no objects found under S3 prefix %s", ds.S3Uri)
	}
	return ins, nil
}

// relKey is uri's key below base's. Listings name files by plain path
// whatever form the prefix had (file:///d/ lists /d/x), so both are
// compared as keys.
func relKey(base, uri string) string {
	lb, err1 := objstore.Parse(base)
	lu, err2 := objstore.Parse(uri)
	if err1 != nil || err2 != nil || lb.Scheme != lu.Scheme || lb.Bucket != lu.Bucket {
		return strings.TrimPrefix(uri, base)
	}
	return strings.TrimPrefix(lu.Key, lb.Key)
}

// execute runs the job's inputs and returns the outputs written and, on
// failure, the reason.
func (s *Service) execute(ctx context.Context, j *catalog.TransformJob, pr *progress) (written []string, reason string) {
	ins, err := s.inputs(ctx, j)
	if err != nil {
		return nil, err.Error()
	}
	tag := jobTag(j)
	var todo []input
	pr.objectsTotal = len(ins)
	for _, in := range ins {
		pr.bytesTotal += in.size
		if info, err := s.deps.Objects.Head(ctx, in.out); err == nil && info.Metadata[metaJob] == tag {
			written = append(written, in.out) // finished before a restart
			pr.bytesAtStart += in.size
			pr.objectsDone.Add(1)
			continue
		}
		todo = append(todo, in)
	}
	pr.bytes.Store(pr.bytesAtStart)
	pr.started = time.Now()
	s.track(j, pr) // totals are set: Describe may read it from now on
	if len(todo) == 0 {
		return written, ""
	}
	p, env := s.params(j)
	var execParams *process.ExecutionParameters
	var epOnce sync.Once
	start, err := s.deps.Hosting.StartFuncFor(ctx, j.ModelName, j.TransformResources.InstanceType, "batch", j.TransformJobName, env)
	if err != nil {
		return written, err.Error()
	}
	wrapped := func(ctx context.Context, id string) (runtime.Model, func(), error) {
		m, release, err := start(ctx, id)
		if err == nil && (j.MaxConcurrentTransforms == nil || j.BatchStrategy == "" || j.MaxPayloadInMB == nil) {
			if ep, ok := m.(execParamser); ok {
				epOnce.Do(func() {
					if v, ok, err := ep.ExecutionParameters(ctx); err == nil && ok {
						execParams = &v
					}
				})
			}
		}
		return m, release, err
	}
	count := j.TransformResources.InstanceCount
	pl := pool.New(pool.Config{
		Name: "transform/" + j.TransformJobName, Start: wrapped,
		Concurrency: maxPayloadMB, QueueLimit: 1 << 16, QueueTimeout: p.timeout + time.Minute,
		Logger: s.log,
	})
	defer func() {
		if err := pl.Close(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("close transform pool", "job", j.TransformJobName, "err", err)
		}
	}()
	if err := s.place(ctx, pl, j, count); err != nil {
		return written, err.Error()
	}
	if execParams != nil {
		p.apply(j, *execParams)
	}
	workers := count * p.concurrent
	work := make(chan *task, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				t.res <- s.invoke(t.ctx, pl, j, p, t.payload, t.size)
			}
		}()
	}
	defer func() { close(work); wg.Wait() }()

	// Files run up to InstanceCount at a time, sharing the workers.
	var mu sync.Mutex
	var failures []string
	sem := make(chan struct{}, count)
	var fwg sync.WaitGroup
	for _, in := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			defer func() { <-sem }()
			err := s.processObject(ctx, j, p, in, tag, work, workers, pr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					failures = append(failures, err.Error())
				}
				return
			}
			written = append(written, in.out)
			pr.objectsDone.Add(1)
		}()
	}
	fwg.Wait()
	if len(failures) > 0 {
		return written, strings.Join(failures, "; ")
	}
	return written, ""
}

// place starts the job's instances, waiting while the node lacks room.
func (s *Service) place(ctx context.Context, pl *pool.Pool, j *catalog.TransformJob, count int) error {
	deadline := time.Now().Add(s.cfg.PlacementTimeout)
	logged := false
	for {
		err := pl.Resize(ctx, count)
		if err == nil {
			return nil
		}
		if !isCapacity(err) || ctx.Err() != nil {
			return fmt.Errorf("instances did not start: %v", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("could not place %d × %s within %v: %v", count, j.TransformResources.InstanceType, s.cfg.PlacementTimeout, err)
		}
		if !logged {
			s.log.Info("transform job waiting for node capacity", "job", j.TransformJobName, "err", err)
			logged = true
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("instances did not start: %v", ctx.Err())
		case <-t.C:
		}
	}
}

// params returns the job's settings before /execution-parameters, and
// the batch environment variables for the container.
func (s *Service) params(j *catalog.TransformJob) (params, map[string]string) {
	p := params{multi: j.BatchStrategy != "SingleRecord", limit: defaultPayloadMB << 20, concurrent: 1}
	env := maps.Clone(j.Environment)
	if env == nil {
		env = map[string]string{}
	}
	env["SAGEMAKER_BATCH"] = "true"
	if j.MaxPayloadInMB != nil {
		p.limit = int64(*j.MaxPayloadInMB) << 20
		env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = strconv.Itoa(*j.MaxPayloadInMB)
	}
	if j.BatchStrategy != "" {
		env["SAGEMAKER_BATCH_STRATEGY"] = map[string]string{"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}[j.BatchStrategy]
	}
	if m := j.MaxConcurrentTransforms; m != nil && *m > 0 {
		p.concurrent = *m
		env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = strconv.Itoa(*m)
	}
	p.timeout = time.Duration(j.ModelClientConfig.InvocationsTimeoutInSeconds) * time.Second
	p.retries = j.ModelClientConfig.InvocationsMaxRetries
	return p, env
}

// apply takes the container's preferences for what the job left unset
// (precedence: API, then /execution-parameters, then defaults), within
// SageMaker's limits.
func (p *params) apply(j *catalog.TransformJob, ep process.ExecutionParameters) {
	if (j.MaxConcurrentTransforms == nil || *j.MaxConcurrentTransforms == 0) && ep.MaxConcurrentTransforms > 0 {
		p.concurrent = min(ep.MaxConcurrentTransforms, maxPayloadMB)
	}
	if j.BatchStrategy == "" && ep.BatchStrategy != "" {
		p.multi = ep.BatchStrategy != "SINGLE_RECORD"
	}
	if j.MaxPayloadInMB == nil && ep.MaxPayloadInMB > 0 {
		p.limit = int64(min(ep.MaxPayloadInMB, maxPayloadMB)) << 20
	}
}

// task is one request for a worker.
type task struct {
	ctx     context.Context
	payload []byte
	size    int64
	res     chan invokeResult
}

type invokeResult struct {
	body []byte
	err  error
}

// invoke sends one request, retrying per ModelClientConfig. Client errors
// from the model (4xx) are not retried: the same record fails again.
func (s *Service) invoke(ctx context.Context, pl *pool.Pool, j *catalog.TransformJob, p params, payload []byte, size int64) invokeResult {
	var last error
	for attempt := 0; attempt <= p.retries; attempt++ {
		if ctx.Err() != nil {
			return invokeResult{err: ctx.Err()}
		}
		body, err := s.invokeOnce(ctx, pl, j, p, payload)
		if err == nil {
			return invokeResult{body: body}
		}
		last = err
		var me *runtime.ModelError
		if errors.As(err, &me) && me.StatusCode >= 400 && me.StatusCode < 500 {
			break
		}
	}
	return invokeResult{err: last}
}

func (s *Service) invokeOnce(ctx context.Context, pl *pool.Pool, j *catalog.TransformJob, p params, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	res, err := pl.Invoke(ctx, &runtime.Request{
		ContentType: j.TransformInput.ContentType, Accept: j.TransformOutput.Accept,
		Body: bytes.NewReader(payload), Size: int64(len(payload)),
	}, pool.Normal)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

// describeInvokeError words a failed request the way SageMaker's data log does.
func describeInvokeError(err error) string {
	var me *runtime.ModelError
	if errors.As(err, &me) {
		kind := "server"
		if me.StatusCode >= 400 && me.StatusCode < 500 {
			kind = "client"
		}
		return fmt.Sprintf("Received %s error (%d) from model with message %q", kind, me.StatusCode, me.Message)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the invocation timed out (InvocationsTimeoutInSeconds)"
	}
	return "Unable to get response from algorithm: " + err.Error()
}

// openInput streams an input object, decompressing gzip.
func (s *Service) openInput(ctx context.Context, j *catalog.TransformJob, uri string, pr *progress) (io.ReadCloser, int64, error) {
	rc, info, err := s.deps.Objects.Open(ctx, uri, nil)
	if err != nil {
		return nil, 0, err
	}
	counted := countingReader{rc, &pr.bytes}
	if j.TransformInput.CompressionType != "Gzip" {
		return struct {
			io.Reader
			io.Closer
		}{counted, rc}, info.Size, nil
	}
	zr, err := gzip.NewReader(counted)
	if err != nil {
		rc.Close()
		return nil, 0, fmt.Errorf("gzip: %v", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, rc}, -1, nil
}
