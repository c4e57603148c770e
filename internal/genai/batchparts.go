package genai

// Batch progress and the run that makes it. Finished records are kept in
// the job's part objects (<parts prefix><job id>/…, each written
// atomically, a few records at a time) in two kinds:
//
//   - the ordered log, o<seq>.jsonl: records 0, 1, 2, … in input order, the
//     prefix of the input that is finished. The output is written from it.
//   - loose parts, l<seq>.jsonl: records finished after the first
//     unfinished one when a run ended (at most a window of them).
//     (<seq>.jsonl, the layout before the ordered log, reads as loose.)
//
// A resumed job reads the parts back — the log only to count it — and runs
// only the records no part holds, so a record is generated and counted
// once however the server stopped.
//
// A run (batchrun) reads the input a second time, in order, and feeds the
// records to the workers through a window of window() records: a record
// takes a slot when it is fed and gives it back when it joins the ordered
// log, so records in flight plus those finished out of order never exceed
// the window. Memory does not grow with the input.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/pool"
)

// partEvery is the fewest finished records a part of the ordered log
// holds (the last part of a run, written when the job stops or the server
// shuts down, may hold fewer); large jobs write larger parts (logEvery).
const partEvery = 8

// logEvery is how many records a job of n records puts in one part of its
// ordered log: about a thousand parts per job, 8 to 256 records each.
func logEvery(n int) int { return min(max(n/1000, partEvery), 256) }

// partRecord is one finished record in a part object.
type partRecord struct {
	I      int    `json:"i"`
	Failed bool   `json:"f,omitempty"`
	In     int    `json:"it,omitempty"`
	Out    int    `json:"ot,omitempty"`
	Line   []byte `json:"l"`
}

func (p partRecord) record() BatchRecord {
	return BatchRecord{Line: p.Line, Failed: p.Failed, InputTokens: p.In, OutputTokens: p.Out}
}

func partOf(i int, r BatchRecord) partRecord {
	return partRecord{I: i, Failed: r.Failed, In: r.InputTokens, Out: r.OutputTokens, Line: r.Line}
}

// WithParts keeps each job's finished records under prefixURI (an
// internal location of the object store, ending in "/") so that a job
// resumed after a restart does not run them again. Without it a resumed
// job starts from its first record, and a running job keeps its outputs
// in memory until it writes them. Call it before Start.
func (b *Batches) WithParts(prefixURI string) *Batches {
	if prefixURI != "" && !strings.HasSuffix(prefixURI, "/") {
		prefixURI += "/"
	}
	b.parts = prefixURI
	return b
}

func (b *Batches) partsOf(jobID string) string { return b.parts + jobID + "/" }

// progress is a job's finished records.
type progress struct {
	n      int                 // records in the input
	logged int                 // records in the ordered log: 0 … logged-1
	loose  map[int]BatchRecord // finished records after the log
	seq    int                 // the next part's number
	counts catalog.ModelJobCounts
	mem    []BatchRecord // the ordered log without parts storage
}

// part is one stored part object.
type part struct {
	uri     string
	ordered bool
	seq     int
}

// listParts returns the job's parts by sequence number.
func (b *Batches) listParts(ctx context.Context, jobID string) ([]part, error) {
	var parts []part
	opts := objstore.ListOptions{}
	for {
		page, err := b.objects.List(ctx, b.partsOf(jobID), opts)
		if err != nil {
			return nil, fmt.Errorf("listing the progress of job %s: %w", jobID, err)
		}
		for _, o := range page.Objects {
			name := strings.TrimSuffix(o.URI[strings.LastIndex(o.URI, "/")+1:], ".jsonl")
			p := part{uri: o.URI, ordered: strings.HasPrefix(name, "o")}
			seq, err := strconv.Atoi(strings.TrimLeft(name, "ol"))
			if err != nil {
				continue // not a part
			}
			p.seq = seq
			parts = append(parts, p)
		}
		if page.NextToken == "" {
			break
		}
		opts.Token = page.NextToken
	}
	slices.SortFunc(parts, func(a, b part) int { return a.seq - b.seq })
	return parts, nil
}

// loadParts reads a job's progress for an input of n records: the ordered
// log is counted, not kept; loose records are kept (a window's worth per
// run that ended). Records whose index is outside the input are ignored
// (an input replaced between runs).
func (b *Batches) loadParts(ctx context.Context, jobID string, n int) (*progress, error) {
	prog := &progress{n: n, loose: map[int]BatchRecord{}, counts: catalog.ModelJobCounts{Total: n}}
	if b.parts == "" {
		return prog, nil
	}
	parts, err := b.listParts(ctx, jobID)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		prog.seq = p.seq + 1
		if !p.ordered {
			continue
		}
		err := b.readPart(ctx, p.uri, func(pr partRecord) error {
			switch {
			case pr.I >= n:
			case pr.I != prog.logged:
				return fmt.Errorf("batch progress %s: record %d where %d belongs", p.uri, pr.I, prog.logged)
			default:
				prog.logged++
				addCount(&prog.counts, pr.record())
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, p := range parts {
		if p.ordered {
			continue
		}
		err := b.readPart(ctx, p.uri, func(pr partRecord) error {
			if pr.I >= prog.logged && pr.I < n {
				prog.loose[pr.I] = pr.record()
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, r := range prog.loose {
		addCount(&prog.counts, r)
	}
	return prog, nil
}

// errStopRead ends readPart early without an error.
var errStopRead = errors.New("stop reading")

// readPart streams a part's records to each; an error from each ends it
// (errStopRead quietly).
func (b *Batches) readPart(ctx context.Context, uri string, each func(partRecord) error) error {
	rc, _, err := b.objects.Open(ctx, uri, nil)
	if err != nil {
		return fmt.Errorf("reading batch progress %s: %w", uri, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 4*maxRecordLine)
	for sc.Scan() {
		var p partRecord
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("reading batch progress %s: %w", uri, err)
		}
		if err := each(p); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading batch progress %s: %w", uri, err)
	}
	return nil
}

// writePart stores recs as part seq of the job: of the ordered log
// ("o"), or loose ("l").
func (b *Batches) writePart(ctx context.Context, jobID, kind string, seq int, recs []partRecord) error {
	if b.parts == "" || len(recs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, r := range recs {
		l, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(l)
		buf.WriteByte('\n')
	}
	uri := fmt.Sprintf("%s%s%08d.jsonl", b.partsOf(jobID), kind, seq)
	if _, err := b.objects.Put(ctx, uri, &buf, objstore.PutOptions{ContentType: "application/jsonl", Size: int64(buf.Len())}); err != nil {
		return fmt.Errorf("storing batch progress %s: %w", uri, err)
	}
	return nil
}

// batchrun is one run of a job's records.
type batchrun struct {
	b      *Batches
	job    *catalog.ModelJob
	r      *batchRun
	format BatchFormat
	uri    string // the input object
	prog   *progress

	// The collector's (process's goroutine) alone:
	done    map[int]BatchRecord // finished after the log's end, waiting for the records before them
	pending []partRecord        // joined the log, not yet in a part
}

// window is how many records a run has fed and not yet logged.
func (b *Batches) window() int { return 4 * b.workers }

type fed struct {
	i    int
	line []byte
}

type finished struct {
	i   int
	rec BatchRecord
}

// process runs the records no part holds and returns why the input could
// not be fed to the end, if it could not (nil when ctx ended it). The
// workers and the feeder it starts have ended when it returns.
func (run *batchrun) process(ctx context.Context) error {
	b, prog := run.b, run.prog
	// The feeder's own copies: the collector changes prog.
	n, from := prog.n, prog.logged
	skip := make(map[int]bool, len(prog.loose))
	for i := range prog.loose {
		skip[i] = true
	}
	slots := make(chan struct{}, b.window())
	work := make(chan fed)
	results := make(chan finished, b.window())
	var feedErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the feeder: the input's second read, in order
		defer wg.Done()
		defer close(work)
		read, complete, err := b.scanInput(ctx, run.uri, func(i int, l []byte) bool {
			if i >= n {
				return false // the input grew: the first pass counted n
			}
			if i < from || skip[i] {
				return true
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- fed{i, bytes.Clone(l)}:
				return true
			case <-ctx.Done():
				return false
			}
		})
		switch {
		case ctx.Err() != nil:
		case err != nil:
			feedErr = err
		case complete && read < n:
			feedErr = fmt.Errorf("the input %s changed while the job ran: %d records, %d before", run.uri, read, n)
		}
	}()
	var workers sync.WaitGroup
	for range b.workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for it := range work {
				if ctx.Err() != nil {
					continue // not run: it runs at the next start
				}
				rec := run.format.Record(ctx, run.job, it.i, it.line)
				if ctx.Err() != nil && rec.Failed {
					continue // interrupted: not counted, runs again
				}
				results <- finished{it.i, rec}
			}
		}()
	}
	wg.Add(1)
	go func() { // closes results once no worker can send
		defer wg.Done()
		workers.Wait()
		close(results)
	}()

	run.done = map[int]BatchRecord{}
	every := logEvery(prog.n)
	run.advance(ctx, slots, every)
	for f := range results {
		run.done[f.i] = f.rec
		addCount(&run.job.Counts, f.rec)
		run.advance(ctx, slots, every)
	}
	wg.Wait()
	run.flushLog(ctx)
	// Records finished after the first unfinished one: a loose part, so
	// that a restart does not run them again.
	if len(run.done) > 0 {
		var loose []partRecord
		for _, i := range slices.Sorted(maps.Keys(run.done)) {
			loose = append(loose, partOf(i, run.done[i]))
		}
		if err := b.writePart(context.WithoutCancel(ctx), run.job.ID, "l", prog.seq, loose); err != nil {
			b.log.Error("store batch progress", "job", run.job.ID, "err", err)
		}
		prog.seq++
	}
	return feedErr
}

// advance moves the records that now follow the ordered log into it,
// giving back the slots of those the feeder fed, and stores the log every
// so many records.
func (run *batchrun) advance(ctx context.Context, slots <-chan struct{}, every int) {
	prog := run.prog
	for prog.logged < prog.n {
		rec, ok := run.done[prog.logged]
		if ok {
			delete(run.done, prog.logged)
			<-slots
		} else if rec, ok = prog.loose[prog.logged]; ok {
			delete(prog.loose, prog.logged)
		} else {
			break
		}
		run.pending = append(run.pending, partOf(prog.logged, rec))
		prog.logged++
	}
	if len(run.pending) >= every {
		run.flushLog(ctx)
		run.b.save(run.job, run.r)
	}
}

// flushLog stores the records that joined the ordered log since the last
// part (in memory without parts storage).
func (run *batchrun) flushLog(ctx context.Context) {
	if len(run.pending) == 0 {
		return
	}
	b, prog := run.b, run.prog
	if b.parts == "" {
		for _, p := range run.pending {
			prog.mem = append(prog.mem, p.record())
		}
	} else {
		if err := b.writePart(context.WithoutCancel(ctx), run.job.ID, "o", prog.seq, run.pending); err != nil {
			b.log.Error("store batch progress", "job", run.job.ID, "err", err)
		}
		prog.seq++
	}
	run.pending = nil
}

// records yields the finished records in input order: the ordered log,
// read part by part, then the records finished after it.
func (run *batchrun) records(ctx context.Context, yield func(BatchRecord) bool) error {
	b, prog := run.b, run.prog
	if b.parts == "" {
		for _, r := range prog.mem {
			if !yield(r) {
				return nil
			}
		}
	} else {
		parts, err := b.listParts(ctx, run.job.ID)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if !p.ordered {
				continue
			}
			err := b.readPart(ctx, p.uri, func(pr partRecord) error {
				if pr.I < prog.n && !yield(pr.record()) {
					return errStopRead
				}
				return nil
			})
			if errors.Is(err, errStopRead) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	tail := maps.Clone(prog.loose)
	maps.Copy(tail, run.done)
	for _, i := range slices.Sorted(maps.Keys(tail)) {
		if !yield(tail[i]) {
			return nil
		}
	}
	return nil
}

// PutRecords streams the lines of the records keep accepts (nil: all) to
// the object uri, one per line, and returns the object and how many lines
// it holds. Formats write their outputs with it.
func PutRecords(ctx context.Context, objects objstore.Store, uri string, records iter.Seq[BatchRecord], keep func(BatchRecord) bool) (objstore.Info, int, error) {
	pr, pw := io.Pipe()
	n := 0
	done := make(chan struct{})
	go func() { // the writer; PutRecords waits for it
		defer close(done)
		bw := bufio.NewWriterSize(pw, 64<<10)
		var err error
		for r := range records {
			if keep != nil && !keep(r) {
				continue
			}
			n++
			if _, err = bw.Write(r.Line); err == nil {
				err = bw.WriteByte('\n')
			}
			if err != nil {
				break
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err) // nil: the reader sees EOF
	}()
	info, err := objects.Put(ctx, uri, pr, objstore.PutOptions{ContentType: "application/jsonl", Size: -1})
	pr.CloseWithError(io.ErrClosedPipe) // a Put that stopped early unblocks the writer
	<-done
	return info, n, err
}

// dropParts deletes a finished job's part objects.
func (b *Batches) dropParts(ctx context.Context, jobID string) {
	if b.parts == "" {
		return
	}
	for {
		page, err := b.objects.List(ctx, b.partsOf(jobID), objstore.ListOptions{})
		if err != nil || len(page.Objects) == 0 {
			return
		}
		for _, o := range page.Objects {
			if err := b.objects.Delete(ctx, o.URI); err != nil {
				b.log.Warn("delete batch progress", "job", jobID, "err", err)
				return
			}
		}
	}
}

// addCount counts one finished record.
func addCount(c *catalog.ModelJobCounts, r BatchRecord) {
	c.Processed++
	if r.Failed {
		c.Errors++
	} else {
		c.Success++
	}
	c.InputTokens += r.InputTokens
	c.OutputTokens += r.OutputTokens
}

// batchKey marks a context whose generations are batch records.
type batchKey struct{}

// WithBatch returns a context under which Generate treats requests as
// batch records: low priority on the shared pool and metered in mode
// (ModeBatch when empty), unless a request sets its own priority or mode.
// Protocol adapters use it to run a batch line through their interactive
// handler unchanged.
func WithBatch(ctx context.Context, mode string) context.Context {
	if mode == "" {
		mode = ModeBatch
	}
	return context.WithValue(ctx, batchKey{}, mode)
}

// InBatch reports whether ctx runs batch records (WithBatch).
func InBatch(ctx context.Context) bool {
	_, ok := ctx.Value(batchKey{}).(string)
	return ok
}

// batchRequest applies WithBatch's marks to req (a copy when it changes).
func batchRequest(ctx context.Context, req *Request) *Request {
	mode, ok := ctx.Value(batchKey{}).(string)
	if !ok || (req.Priority != 0 && req.Mode != "") {
		return req
	}
	r := *req
	if r.Priority == 0 {
		r.Priority = pool.Low
	}
	if r.Mode == "" {
		r.Mode = mode
	}
	return &r
}
