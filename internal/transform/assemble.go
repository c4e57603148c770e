package transform

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/objstore"
)

// processObject transforms one input object into its output object. The
// reader splits and batches, workers invoke, and the assembler writes the
// results in input order into a streaming Put, which makes the output
// visible only when the whole object is done. At most window batches are
// in flight, so memory is bounded by window × MaxPayloadInMB (plus their
// responses) whatever the object's size.
func (s *Service) processObject(ctx context.Context, j *catalog.TransformJob, p params, in input, tag string, work chan<- *task, window int, pr *progress) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	src, size, err := s.openInput(ctx, j, in.uri, pr)
	if err != nil {
		return fmt.Errorf("%s: %v", in.uri, err)
	}
	defer src.Close()

	pipeR, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		_, err := s.deps.Objects.Put(ctx, in.out, pipeR, objstore.PutOptions{
			ContentType: j.TransformOutput.Accept, Size: -1, Metadata: map[string]string{metaJob: tag},
		})
		pipeR.CloseWithError(err)
		putDone <- err
	}()
	out := bufio.NewWriterSize(pw, 256<<10)

	var procErr error
	if j.TransformInput.SplitType == "" || j.TransformInput.SplitType == "None" {
		procErr = s.wholeObject(ctx, j, p, in, src, size, work, out, pr)
	} else {
		procErr = s.splitObject(ctx, j, p, in, src, work, window, out, pr)
	}
	if procErr == nil {
		procErr = out.Flush()
	}
	if procErr != nil {
		cancel(procErr)
		pw.CloseWithError(procErr)
		<-putDone
		return procErr
	}
	pw.Close()
	if err := <-putDone; err != nil {
		return fmt.Errorf("%s: write %s: %v", in.uri, in.out, err)
	}
	return nil
}

// wholeObject sends the object as one request (SplitType None).
func (s *Service) wholeObject(ctx context.Context, j *catalog.TransformJob, p params, in input, src io.Reader, size int64, work chan<- *task, out io.Writer, pr *progress) error {
	limit := p.limit
	if limit == 0 {
		limit = maxPayloadMB << 20
	}
	payload, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		return fmt.Errorf("%s: read: %v", in.uri, err)
	}
	if int64(len(payload)) > limit {
		return fmt.Errorf("%s: the object is over MaxPayloadInMB (%d bytes) and SplitType is None: split it with SplitType Line or RecordIO", in.uri, limit)
	}
	t := &task{ctx: ctx, payload: payload, res: make(chan invokeResult, 1)}
	select {
	case work <- t:
	case <-ctx.Done():
		return ctx.Err()
	}
	r := <-t.res
	if r.err != nil {
		return fmt.Errorf("%s: %s", in.uri, describeInvokeError(r.err))
	}
	pr.records.Add(1)
	return s.assemble(j, p, &batch{n: 1, first: 1, inputs: [][]byte{payload}}, r.body, out)
}

// pending is a batch sent to the workers, in input order.
type pending struct {
	b *batch
	t *task
}

// splitObject splits the object into batches, sends them to the workers
// and assembles the results in order.
func (s *Service) splitObject(ctx context.Context, j *catalog.TransformJob, p params, in input, src io.Reader, work chan<- *task, window int, out io.Writer, pr *progress) error {
	limit := p.limit
	if limit == 0 {
		limit = maxPayloadMB << 20
	}
	dp := j.DataProcessing
	var filter *jsonPath
	var join bool
	if dp != nil {
		filter, _ = parsePath(dp.InputFilter) // validated at create
		join = dp.JoinSource == "Input"
	}
	inFmt, _ := formatOf(j.TransformInput.ContentType)
	var rr recordReader
	if j.TransformInput.SplitType == "RecordIO" {
		rr = newRecordIOReader(src, limit)
	} else {
		rr = newLineReader(src, limit)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	order := make(chan pending, window)
	asmDone := make(chan error, 1)
	go func() {
		defer func() { cancel(nil) }()
		var err error
		for pd := range order {
			if err != nil {
				continue // drain
			}
			var r invokeResult
			select {
			case r = <-pd.t.res:
			case <-ctx.Done():
				err = ctx.Err()
				continue
			}
			if r.err != nil {
				err = fmt.Errorf("%s: %s: %s", in.uri, recordSpan(pd.b), describeInvokeError(r.err))
				cancel(err)
				continue
			}
			if aerr := s.assemble(j, p, pd.b, r.body, out); aerr != nil {
				err = fmt.Errorf("%s: %s: %v", in.uri, recordSpan(pd.b), aerr)
				cancel(err)
				continue
			}
			pr.records.Add(int64(pd.b.n))
		}
		asmDone <- err
	}()
	splitErr := splitBatches(rr, splitOptions{
		multi: p.multi, limit: limit, recordIO: j.TransformInput.SplitType == "RecordIO",
		keepInputs: join, filter: filter, format: inFmt,
	}, func(b *batch) error {
		t := &task{ctx: ctx, payload: b.payload, res: make(chan invokeResult, 1)}
		select {
		case order <- pending{b, t}: // blocks while window batches are unassembled
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case work <- t:
			return nil
		case <-ctx.Done():
			t.res <- invokeResult{err: ctx.Err()}
			return ctx.Err()
		}
	})
	close(order)
	asmErr := <-asmDone
	if splitErr != nil {
		var re *recordError
		if errors.As(splitErr, &re) {
			return fmt.Errorf("%s: record %d: %v", in.uri, re.record, re.err)
		}
		if asmErr != nil {
			return asmErr
		}
		return fmt.Errorf("%s: %v", in.uri, splitErr)
	}
	return asmErr
}

func recordSpan(b *batch) string {
	if b.n == 1 {
		return fmt.Sprintf("record %d", b.first)
	}
	return fmt.Sprintf("records %d-%d", b.first, b.first+b.n-1)
}

// assemble writes one batch's result: as it came (AssembleWith None) or
// with a newline after each record's output (Line); per record when
// outputs are joined to inputs or filtered.
func (s *Service) assemble(j *catalog.TransformJob, p params, b *batch, body []byte, out io.Writer) error {
	line := j.TransformOutput.AssembleWith == "Line"
	dp := j.DataProcessing
	var outFilter *jsonPath
	join := false
	if dp != nil {
		outFilter, _ = parsePath(dp.OutputFilter)
		join = dp.JoinSource == "Input"
	}
	if !join && outFilter.whole() {
		if _, err := out.Write(body); err != nil {
			return err
		}
		if line && (len(body) == 0 || body[len(body)-1] != '\n') {
			_, err := out.Write([]byte{'\n'})
			return err
		}
		return nil
	}
	outs, err := splitOutputs(body, b.n)
	if err != nil {
		return err
	}
	inFmt, _ := formatOf(j.TransformInput.ContentType)
	outFmt, ok := formatOf(j.TransformOutput.Accept)
	if !ok {
		outFmt = formatCSV
	}
	for i, o := range outs {
		rec, f := o, outFmt
		if join {
			if rec, err = joinRecord(b.inputs[i], o, inFmt); err != nil {
				return fmt.Errorf("JoinSource Input: %v", err)
			}
			f = inFmt
		}
		if rec, err = filterRecord(outFilter, rec, f); err != nil {
			return fmt.Errorf("OutputFilter: %v", err)
		}
		if _, err := out.Write(rec); err != nil {
			return err
		}
		if line {
			if _, err := out.Write([]byte{'\n'}); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitOutputs cuts a response into one output per record: one line each.
func splitOutputs(body []byte, n int) ([][]byte, error) {
	body = bytes.TrimRight(body, "\r\n")
	if n == 1 {
		return [][]byte{body}, nil
	}
	lines := bytes.Split(body, []byte("\n"))
	if len(lines) != n {
		return nil, fmt.Errorf("the model answered %d lines for %d records; joins and output filters need one output line per record", len(lines), n)
	}
	for i := range lines {
		lines[i] = bytes.TrimSuffix(lines[i], []byte("\r"))
	}
	return lines, nil
}
