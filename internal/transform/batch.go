package transform

import (
	"errors"
	"fmt"
	"io"
)

// A batch is one request's worth of records of one input object.
type batch struct {
	seq     int    // 0-based position in the object's batches
	first   int    // 1-based number of its first record in the object
	n       int    // records
	payload []byte // the request body
	// inputs are the records' data (after InputFilter), kept only when
	// outputs are joined to inputs.
	inputs [][]byte
}

// splitOptions says how records become requests.
type splitOptions struct {
	multi      bool  // MultiRecord: pack records up to limit; else one per request
	limit      int64 // bytes per request
	recordIO   bool  // records are RecordIO (else lines)
	keepInputs bool  // fill batch.inputs
	filter     *jsonPath
	format     format
}

// recordError is a failure tied to one record of an object.
type recordError struct {
	record int // 1-based
	err    error
}

func (e *recordError) Error() string { return fmt.Sprintf("record %d: %v", e.record, e.err) }
func (e *recordError) Unwrap() error { return e.err }

// splitBatches reads every record and calls emit with each batch, in
// order. A record over the limit, a read error or emit's error ends it.
// emit owns the batch it is given.
func splitBatches(rr recordReader, o splitOptions, emit func(*batch) error) error {
	var cur *batch
	seq, n := 0, 0
	flush := func() error {
		if cur == nil || cur.n == 0 {
			return nil
		}
		b := cur
		cur = nil
		seq++
		return emit(b)
	}
	for {
		rec, err := rr.next()
		if err == io.EOF {
			return flush()
		}
		n++
		if err != nil {
			var tl *tooLarge
			if errors.As(err, &tl) {
				return &recordError{record: n, err: fmt.Errorf("%w: the record is over MaxPayloadInMB (%d bytes)", errRecordTooLarge, o.limit)}
			}
			return &recordError{record: n, err: err}
		}
		data := rec.data
		if o.filter != nil && !o.filter.whole() {
			if data, err = filterRecord(o.filter, rec.data, o.format); err != nil {
				return &recordError{record: n, err: fmt.Errorf("InputFilter: %w", err)}
			}
		}
		var send []byte
		switch {
		case o.recordIO && o.multi: // MultiRecord keeps RecordIO framing and padding
			send = rec.raw
			if o.filter != nil && !o.filter.whole() {
				send = appendRecordIO(nil, data)
			}
		case o.recordIO: // SingleRecord sends the record without framing
			send = data
		case o.filter != nil && !o.filter.whole():
			send = append(append([]byte(nil), data...), '\n')
		default:
			send = rec.raw // the line with its newline
		}
		if int64(len(send)) > o.limit {
			return &recordError{record: n, err: fmt.Errorf("%w: %d bytes, over MaxPayloadInMB (%d bytes)", errRecordTooLarge, len(send), o.limit)}
		}
		if cur != nil && (!o.multi || int64(len(cur.payload)+len(send)) > o.limit) {
			if err := flush(); err != nil {
				return err
			}
		}
		if cur == nil {
			cur = &batch{seq: seq, first: n}
		}
		cur.payload = append(cur.payload, send...)
		cur.n++
		if o.keepInputs {
			cur.inputs = append(cur.inputs, append([]byte(nil), data...))
		}
	}
}
