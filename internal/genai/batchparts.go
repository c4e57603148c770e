package genai

// Batch progress that survives a restart: finished records are appended to
// the job's part objects (<parts prefix><job id>/<seq>.jsonl, each written
// atomically, a few records at a time), and a resumed job reads them back
// and runs only the records no part holds. The counts in the stored job
// are recomputed from the parts, so a record is counted once however the
// server stopped.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/pool"
)

// partEvery is how many finished records a part object holds (the last
// part of a run, written when the job stops or the server shuts down, may
// hold fewer).
const partEvery = 8

// partRecord is one finished record in a part object.
type partRecord struct {
	I      int    `json:"i"`
	Failed bool   `json:"f,omitempty"`
	In     int    `json:"it,omitempty"`
	Out    int    `json:"ot,omitempty"`
	Line   []byte `json:"l"`
}

// WithParts keeps each job's finished records under prefixURI (an
// internal location of the object store, ending in "/") so that a job
// resumed after a restart does not run them again. Without it a resumed
// job starts from its first record. Call it before Start.
func (b *Batches) WithParts(prefixURI string) *Batches {
	if prefixURI != "" && !strings.HasSuffix(prefixURI, "/") {
		prefixURI += "/"
	}
	b.parts = prefixURI
	return b
}

func (b *Batches) partsOf(jobID string) string { return b.parts + jobID + "/" }

// loadParts fills records and done from the job's part objects and returns
// how many parts there are. Records whose index is outside the input are
// ignored (an input replaced between runs).
func (b *Batches) loadParts(ctx context.Context, jobID string, records []BatchRecord, done []bool) (int, error) {
	if b.parts == "" {
		return 0, nil
	}
	var uris []string
	opts := objstore.ListOptions{}
	for {
		page, err := b.objects.List(ctx, b.partsOf(jobID), opts)
		if err != nil {
			return 0, fmt.Errorf("listing the progress of job %s: %w", jobID, err)
		}
		for _, o := range page.Objects {
			uris = append(uris, o.URI)
		}
		if page.NextToken == "" {
			break
		}
		opts.Token = page.NextToken
	}
	for _, uri := range uris {
		if err := b.readPart(ctx, uri, records, done); err != nil {
			return 0, err
		}
	}
	return len(uris), nil
}

func (b *Batches) readPart(ctx context.Context, uri string, records []BatchRecord, done []bool) error {
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
		if p.I < 0 || p.I >= len(records) {
			continue
		}
		records[p.I] = BatchRecord{Line: p.Line, Failed: p.Failed, InputTokens: p.In, OutputTokens: p.Out}
		done[p.I] = true
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading batch progress %s: %w", uri, err)
	}
	return nil
}

// writePart stores recs as part seq of the job.
func (b *Batches) writePart(ctx context.Context, jobID string, seq int, recs []partRecord) error {
	if b.parts == "" || len(recs) == 0 {
		return nil
	}
	var sb strings.Builder
	for _, r := range recs {
		l, err := json.Marshal(r)
		if err != nil {
			return err
		}
		sb.Write(l)
		sb.WriteByte('\n')
	}
	uri := fmt.Sprintf("%s%08d.jsonl", b.partsOf(jobID), seq)
	if _, err := b.objects.Put(ctx, uri, strings.NewReader(sb.String()), objstore.PutOptions{ContentType: "application/jsonl", Size: int64(sb.Len())}); err != nil {
		return fmt.Errorf("storing batch progress %s: %w", uri, err)
	}
	return nil
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

// countsOf recomputes a job's counts from its finished records.
func countsOf(records []BatchRecord, done []bool) catalog.ModelJobCounts {
	c := catalog.ModelJobCounts{Total: len(records)}
	for i, ok := range done {
		if !ok {
			continue
		}
		addCount(&c, records[i])
	}
	return c
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
