package genai

// Batch inference: jobs that run a JSONL file of records through a
// foundation model at low priority on the model's shared pool (the pool
// serves interactive requests first), metered in ModeBatch. The job
// lifecycle lives here; what a record line means and how outputs are
// written is a BatchFormat's business (api/bedrock, api/openai). Jobs are
// stored in the catalog and resumed at start-up; with WithParts, a job that
// was running when the server stopped skips the records it had finished
// (batchparts.go), otherwise it runs again from its first record.
//
// The input is streamed, never held whole: a first pass counts the records
// and feeds a BatchValidator; a second feeds the records to the workers
// through a bounded window (batchrun in batchparts.go), and finished
// records go to the job's progress parts in input order, from which the
// format writes the output. A job's memory is the window, whatever the
// size of its input.
//
// genai/batch imports catalog and objstore; never an API adapter.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
)

// ModeBatch is the ledger mode of batch invocations (priced at the batch
// discount by the price book).
const ModeBatch = "bedrock-batch"

// BatchProvisionedMessage is the ValidationException text for a batch job
// (or an OpenAI batch line) naming a provisioned throughput: batch
// inference runs on the shared on-demand capacity only.
const BatchProvisionedMessage = "Batch inference is not supported with provisioned throughput. Specify a foundation model for the job."

// maxRecordLine bounds one JSONL line.
const maxRecordLine = 4 << 20

// BatchStore is where jobs persist (the catalog).
type BatchStore interface {
	CreateModelJob(ctx context.Context, j *catalog.ModelJob) error
	GetModelJob(ctx context.Context, id string) (*catalog.ModelJob, error)
	ListModelJobs(ctx context.Context, kind string) ([]*catalog.ModelJob, error)
	PutModelJob(ctx context.Context, j *catalog.ModelJob) error
}

// BatchRecord is one record's outcome: the output line (without newline).
type BatchRecord struct {
	Line         []byte
	Failed       bool
	InputTokens  int
	OutputTokens int
}

// BatchFormat is one kind of job's record format.
type BatchFormat interface {
	// Record runs one input line (index i of the file) and returns its
	// output line. It never fails the job: a bad line is a failed record.
	Record(ctx context.Context, job *catalog.ModelJob, i int, line []byte) BatchRecord
	// Write stores a finished (or stopped) job's outputs. records yields
	// the finished records in input order, read from the job's progress as
	// it goes; it may be ranged over more than once. A failure to read the
	// progress ends the sequence early and fails the job even when Write
	// returns nil.
	Write(ctx context.Context, job *catalog.ModelJob, inputName string, records iter.Seq[BatchRecord]) error
}

// BatchValidator is implemented by a format that checks a whole input
// before any record runs (OpenAI fails a batch whose custom_ids repeat).
// lines yields the input's records in order, streamed from the object (a
// line's bytes are valid until the next one: keep only what the check
// needs). An error fails the job with its message; Validate may record
// details in job.Extra, which is stored with the failure. A failure to read
// the input ends lines early and fails the job whatever Validate returns.
type BatchValidator interface {
	Validate(ctx context.Context, job *catalog.ModelJob, lines iter.Seq[[]byte]) error
}

// Batches runs batch jobs. Start resumes stored jobs; Close stops them
// (they stay in their status, to resume at the next start).
type Batches struct {
	store   BatchStore
	objects objstore.Store
	formats map[string]BatchFormat
	log     *slog.Logger
	workers int
	parts   string // prefix URI of the jobs' progress parts; "": none (batchparts.go)

	mu      sync.Mutex
	running map[string]*batchRun
	closed  bool
	wg      sync.WaitGroup
}

type batchRun struct {
	cancel  context.CancelFunc
	stopped bool // StopJob asked (not shutdown)
}

// NewBatches returns the batch runner. formats maps a job kind to its
// format; workers is records in flight per job (default 4).
func NewBatches(store BatchStore, objects objstore.Store, formats map[string]BatchFormat, workers int, log *slog.Logger) *Batches {
	if workers <= 0 {
		workers = 4
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Batches{store: store, objects: objects, formats: formats, workers: workers,
		log: log.With("component", "genai-batch"), running: map[string]*batchRun{}}
}

// NewJobID returns a 12-character lower-case alphanumeric id.
func NewJobID() string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// Submit stores j (status Submitted) and starts it; j stays the
// caller's (the job runs on a copy).
func (b *Batches) Submit(ctx context.Context, j *catalog.ModelJob) error {
	if _, ok := b.formats[j.Kind]; !ok {
		return fmt.Errorf("batch job kind %q: no format", j.Kind)
	}
	now := time.Now().UTC()
	j.Status, j.SubmitTime, j.LastModifiedTime = catalog.ModelJobSubmitted, now, now
	if err := b.store.CreateModelJob(ctx, j); err != nil {
		return err
	}
	run := *j // the runner's own copy: the caller goes on reading j
	b.start(&run)
	return nil
}

// Get returns the stored job.
func (b *Batches) Get(ctx context.Context, id string) (*catalog.ModelJob, error) {
	return b.store.GetModelJob(ctx, id)
}

// List returns the jobs of kind, oldest first.
func (b *Batches) List(ctx context.Context, kind string) ([]*catalog.ModelJob, error) {
	return b.store.ListModelJobs(ctx, kind)
}

// Stop asks a job to stop: it goes to Stopping, then Stopped with the
// outputs of the records already processed. Stopping a finished job is a
// Validation error.
func (b *Batches) Stop(ctx context.Context, id string) (*catalog.ModelJob, error) {
	j, err := b.store.GetModelJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if catalog.ModelJobTerminal(j.Status) || j.Status == catalog.ModelJobStopping {
		return j, apierr.Validationf("The job %s is %s and cannot be stopped.", id, j.Status)
	}
	b.mu.Lock()
	r := b.running[id]
	if r != nil {
		r.stopped = true
		j.Status = catalog.ModelJobStopping
	} else {
		j.Status = catalog.ModelJobStopped
		now := time.Now().UTC()
		j.EndTime = &now
	}
	j.LastModifiedTime = time.Now().UTC()
	err = b.store.PutModelJob(ctx, j)
	b.mu.Unlock()
	if r != nil {
		r.cancel()
	}
	return j, err
}

// Start resumes every stored job that had not finished.
func (b *Batches) Start(ctx context.Context) error {
	js, err := b.store.ListModelJobs(ctx, "")
	if err != nil {
		return err
	}
	for _, j := range js {
		switch {
		case catalog.ModelJobTerminal(j.Status):
		case j.Status == catalog.ModelJobStopping && b.parts != "" && b.formats[j.Kind] != nil:
			// Asked to stop before the server went down: it writes the
			// outputs of its finished records (run) and becomes Stopped.
			b.log.Info("finishing a stopped batch job", "job", j.ID)
			b.start(j)
		case j.Status == catalog.ModelJobStopping:
			j.Status = catalog.ModelJobStopped
			now := time.Now().UTC()
			j.EndTime, j.LastModifiedTime = &now, now
			if err := b.store.PutModelJob(ctx, j); err != nil {
				return err
			}
		default:
			if _, ok := b.formats[j.Kind]; ok {
				b.log.Info("resuming batch job", "job", j.ID, "status", j.Status)
				b.start(j)
			}
		}
	}
	return nil
}

// Close stops the running jobs and waits for them; they keep their status
// and resume at the next Start. It is idempotent.
func (b *Batches) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	for _, r := range b.running {
		r.cancel()
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Batches) start(j *catalog.ModelJob) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.running[j.ID] != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	if j.TimeoutHours > 0 {
		ctx, cancel = context.WithDeadline(context.Background(), j.SubmitTime.Add(time.Duration(j.TimeoutHours)*time.Hour))
	}
	r := &batchRun{cancel: cancel, stopped: j.Status == catalog.ModelJobStopping}
	b.running[j.ID] = r
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer cancel()
		b.run(ctx, j, r)
		b.mu.Lock()
		delete(b.running, j.ID)
		b.mu.Unlock()
	}()
}

// put persists j unless the server is shutting down (then the stored
// status stays, for the next start to resume).
func (b *Batches) put(j *catalog.ModelJob) {
	j.LastModifiedTime = time.Now().UTC()
	if err := b.store.PutModelJob(context.Background(), j); err != nil {
		b.log.Error("store batch job", "job", j.ID, "err", err)
	}
}

// save persists a running job's progress; a job asked to stop stays
// Stopping whatever step it is at.
func (b *Batches) save(j *catalog.ModelJob, r *batchRun) {
	if b.isStopped(r) && !catalog.ModelJobTerminal(j.Status) {
		j.Status = catalog.ModelJobStopping
	}
	b.put(j)
}

func (b *Batches) shuttingDown(r *batchRun) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed && !r.stopped
}

func (b *Batches) isStopped(r *batchRun) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.stopped
}

func (b *Batches) run(ctx context.Context, j *catalog.ModelJob, r *batchRun) {
	format := b.formats[j.Kind]
	finish := func(status, msg string) {
		now := time.Now().UTC()
		j.Status, j.Message, j.EndTime = status, msg, &now
		b.put(j)
	}
	// abort ends a job that cannot run: Failed, or Stopped when it was
	// asked to stop (its context is cancelled, which may be why it failed).
	abort := func(msg string) {
		switch {
		case b.shuttingDown(r):
		case b.isStopped(r):
			finish(catalog.ModelJobStopped, "")
		default:
			finish(catalog.ModelJobFailed, msg)
		}
	}
	if j.Status == catalog.ModelJobStopping {
		b.finishStopped(context.WithoutCancel(ctx), j, format, finish)
		return
	}
	if ctx.Err() != nil && !b.isStopped(r) && !b.shuttingDown(r) {
		finish(catalog.ModelJobExpired, "The job was scheduled but did not begin before its timeout.")
		return
	}
	j.Status = catalog.ModelJobValidating
	b.save(j, r)
	uri, name, err := b.inputObject(ctx, j.InputURI)
	if err != nil {
		abort(err.Error())
		return
	}
	n, err := b.validate(ctx, j, format, uri)
	if err != nil {
		abort(err.Error())
		return
	}
	prog, err := b.loadParts(ctx, j.ID, n)
	if err != nil {
		abort(err.Error())
		return
	}
	if prog.counts.Processed > 0 {
		b.log.Info("batch job resumes after its finished records", "job", j.ID, "finished", prog.counts.Processed, "total", n)
	}
	j.Status = catalog.ModelJobScheduled
	j.Counts = prog.counts
	b.save(j, r)
	if j.StartTime == nil {
		now := time.Now().UTC()
		j.StartTime = &now
	}
	j.Status = catalog.ModelJobInProgress
	b.save(j, r)

	run := &batchrun{b: b, job: j, r: r, format: format, uri: uri, prog: prog}
	feedErr := run.process(ctx)
	if b.shuttingDown(r) {
		b.save(j, r) // the counts so far; the status stays, to resume
		return
	}
	status := catalog.ModelJobCompleted
	switch {
	case b.isStopped(r):
		status = catalog.ModelJobStopped
	case ctx.Err() != nil:
		status = catalog.ModelJobPartiallyCompleted
	case feedErr != nil:
		finish(catalog.ModelJobFailed, feedErr.Error())
		return
	}
	b.output(context.WithoutCancel(ctx), run, name, status, finish)
}

// output writes a job's outputs from its progress and finishes it with
// status (Failed if the outputs cannot be written).
func (b *Batches) output(ctx context.Context, run *batchrun, name, status string, finish func(status, msg string)) {
	var readErr error
	records := func(yield func(BatchRecord) bool) {
		if err := run.records(ctx, yield); err != nil {
			readErr = err
		}
	}
	err := run.format.Write(ctx, run.job, name, records)
	if err == nil {
		err = readErr
	}
	if err != nil {
		finish(catalog.ModelJobFailed, "writing the output failed: "+err.Error())
		return
	}
	finish(status, "")
	b.dropParts(ctx, run.job.ID)
}

// finishStopped ends a job found Stopping at start-up (asked to stop, then
// the server went down before it had written its outputs): the outputs of
// the records its progress holds are written, and it becomes Stopped.
func (b *Batches) finishStopped(ctx context.Context, j *catalog.ModelJob, format BatchFormat, finish func(status, msg string)) {
	_, name, err := b.inputObject(ctx, j.InputURI)
	if err != nil {
		finish(catalog.ModelJobStopped, "")
		return
	}
	prog, err := b.loadParts(ctx, j.ID, math.MaxInt) // every stored record: the input is not read again
	if err != nil {
		finish(catalog.ModelJobFailed, "writing the output failed: "+err.Error())
		return
	}
	total := j.Counts.Total
	j.Counts = prog.counts
	j.Counts.Total = total
	run := &batchrun{b: b, job: j, format: format, prog: prog}
	b.output(ctx, run, name, catalog.ModelJobStopped, finish)
}

// inputObject resolves a job's input: one object, or the first .jsonl
// object under a prefix. It returns the object's URI and name.
func (b *Batches) inputObject(ctx context.Context, uri string) (string, string, error) {
	if strings.HasSuffix(uri, "/") {
		page, err := b.objects.List(ctx, uri, objstore.ListOptions{})
		if err != nil {
			return "", "", fmt.Errorf("listing the input %s failed: %w", uri, err)
		}
		found := ""
		for _, o := range page.Objects {
			if strings.HasSuffix(o.Key, ".jsonl") {
				found = o.URI
				break
			}
		}
		if found == "" {
			return "", "", fmt.Errorf("no .jsonl input file under %s", uri)
		}
		uri = found
	}
	return uri, uri[strings.LastIndex(uri, "/")+1:], nil
}

// validate reads the input once: it counts the records and, when the
// format checks whole inputs, streams them to its validator.
func (b *Batches) validate(ctx context.Context, j *catalog.ModelJob, format BatchFormat, uri string) (int, error) {
	n, complete := 0, false
	if v, ok := format.(BatchValidator); ok {
		var readErr error
		lines := func(yield func([]byte) bool) {
			n, complete, readErr = b.scanInput(ctx, uri, func(_ int, l []byte) bool { return yield(l) })
		}
		err := v.Validate(ctx, j, lines)
		if readErr != nil {
			return 0, readErr
		}
		if err != nil {
			return 0, err
		}
	}
	if !complete { // no validator, or one that stopped early: count
		var err error
		if n, _, err = b.scanInput(ctx, uri, func(int, []byte) bool { return true }); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// scanInput streams the input's records (non-blank lines, trimmed) to
// yield with their index, until yield returns false. It returns how many
// records it read and whether it read them all.
func (b *Batches) scanInput(ctx context.Context, uri string, yield func(i int, line []byte) bool) (int, bool, error) {
	rc, _, err := b.objects.Open(ctx, uri, nil)
	if err != nil {
		return 0, false, fmt.Errorf("reading the input %s failed: %w", uri, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), maxRecordLine)
	n := 0
	for sc.Scan() {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		n++
		if !yield(n-1, l) {
			return n, false, nil
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return n, false, fmt.Errorf("reading the input %s failed: %w", uri, err)
	}
	return n, true, nil
}
