package genai

// Batch inference: jobs that run a JSONL file of records through a
// foundation model at low priority on the model's shared pool (the pool
// serves interactive requests first), metered in ModeBatch. The job
// lifecycle lives here; what a record line means and how outputs are
// written is a BatchFormat's business (api/bedrock, api/openai). Jobs are
// stored in the catalog and resumed at start-up; with WithParts, a job that
// was running when the server stopped skips the records it had finished
// (batchparts.go), otherwise it runs again from its first record.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// Write stores a finished (or stopped) job's outputs.
	Write(ctx context.Context, job *catalog.ModelJob, inputName string, records []BatchRecord) error
}

// BatchValidator is implemented by a format that checks a whole input
// before any record runs (OpenAI fails a batch whose custom_ids repeat).
// An error fails the job with its message; Validate may record details in
// job.Extra, which is stored with the failure.
type BatchValidator interface {
	Validate(ctx context.Context, job *catalog.ModelJob, lines [][]byte) error
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
	r := &batchRun{cancel: cancel}
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
	if ctx.Err() != nil && !b.isStopped(r) && !b.shuttingDown(r) {
		finish(catalog.ModelJobExpired, "The job was scheduled but did not begin before its timeout.")
		return
	}
	j.Status = catalog.ModelJobValidating
	b.save(j, r)
	lines, name, err := b.readInput(ctx, j.InputURI)
	if err != nil {
		abort(err.Error())
		return
	}
	if v, ok := format.(BatchValidator); ok {
		if err := v.Validate(ctx, j, lines); err != nil {
			abort(err.Error())
			return
		}
	}
	records := make([]BatchRecord, len(lines))
	done := make([]bool, len(lines))
	parts, err := b.loadParts(ctx, j.ID, records, done)
	if err != nil {
		abort(err.Error())
		return
	}
	if parts > 0 {
		b.log.Info("batch job resumes after its finished records", "job", j.ID, "finished", countsOf(records, done).Processed, "total", len(lines))
	}
	j.Status = catalog.ModelJobScheduled
	j.Counts = countsOf(records, done)
	b.save(j, r)
	if j.StartTime == nil {
		now := time.Now().UTC()
		j.StartTime = &now
	}
	j.Status = catalog.ModelJobInProgress
	b.save(j, r)

	// Finished records go to a part object every partEvery records (and
	// when the run ends, however it ends), so a restart does not redo them.
	var pending []partRecord
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if err := b.writePart(context.WithoutCancel(ctx), j.ID, parts, pending); err != nil {
			b.log.Error("store batch progress", "job", j.ID, "err", err)
		}
		parts++
		pending = nil
	}
	// Lock order: mu (this run's records and counts) before b.mu (save
	// reads whether the job was asked to stop).
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range min(b.workers, max(len(lines), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				for next < len(lines) && done[next] {
					next++
				}
				i := next
				next++
				mu.Unlock()
				if i >= len(lines) || ctx.Err() != nil {
					return
				}
				rec := format.Record(ctx, j, i, lines[i])
				if ctx.Err() != nil && rec.Failed {
					return // interrupted: not counted, runs again
				}
				mu.Lock()
				records[i], done[i] = rec, true
				addCount(&j.Counts, rec)
				pending = append(pending, partRecord{I: i, Failed: rec.Failed, In: rec.InputTokens, Out: rec.OutputTokens, Line: rec.Line})
				if len(pending) >= partEvery {
					flush()
					b.save(j, r)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	flush()
	if b.shuttingDown(r) {
		b.save(j, r) // the counts so far; the status stays, to resume
		return
	}
	var out []BatchRecord
	for i, ok := range done {
		if ok {
			out = append(out, records[i])
		}
	}
	status := catalog.ModelJobCompleted
	switch {
	case b.isStopped(r):
		status = catalog.ModelJobStopped
	case ctx.Err() != nil:
		status = catalog.ModelJobPartiallyCompleted
	}
	if err := format.Write(context.WithoutCancel(ctx), j, name, out); err != nil {
		finish(catalog.ModelJobFailed, "writing the output failed: "+err.Error())
		return
	}
	finish(status, "")
	b.dropParts(context.WithoutCancel(ctx), j.ID)
}

// readInput reads the JSONL input: one object, or the first .jsonl object
// under a prefix. Blank lines are skipped.
func (b *Batches) readInput(ctx context.Context, uri string) ([][]byte, string, error) {
	if strings.HasSuffix(uri, "/") {
		page, err := b.objects.List(ctx, uri, objstore.ListOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("listing the input %s failed: %w", uri, err)
		}
		found := ""
		for _, o := range page.Objects {
			if strings.HasSuffix(o.Key, ".jsonl") {
				found = o.URI
				break
			}
		}
		if found == "" {
			return nil, "", fmt.Errorf("no .jsonl input file under %s", uri)
		}
		uri = found
	}
	rc, _, err := b.objects.Open(ctx, uri, nil)
	if err != nil {
		return nil, "", fmt.Errorf("reading the input %s failed: %w", uri, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), maxRecordLine)
	var lines [][]byte
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" {
			lines = append(lines, []byte(l))
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, "", fmt.Errorf("reading the input %s failed: %w", uri, err)
	}
	name := uri[strings.LastIndex(uri, "/")+1:]
	return lines, name, nil
}
