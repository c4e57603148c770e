package transform

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A record is one unit of input: data is its content (a line without its
// terminator, a RecordIO record without framing or padding), raw is how it
// appears in the object (the line with "\n", the RecordIO frames with
// padding).
type record struct {
	data []byte
	raw  []byte
}

// recordReader yields an input object's records in order. The slices it
// returns are valid until the next call. At the end it returns io.EOF.
type recordReader interface {
	next() (record, error)
}

// errRecordTooLarge is what a reader returns for a record over its limit;
// the runner words it with the file and record number.
var errRecordTooLarge = errors.New("record too large")

// tooLarge carries how far the reader got before giving up.
type tooLarge struct{ size int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("%v: at least %d bytes", errRecordTooLarge, e.size)
}
func (e *tooLarge) Unwrap() error { return errRecordTooLarge }

// lineReader splits on "\n", stripping a trailing "\r" from data. Empty
// lines are skipped. It never holds more than one record (at most limit
// bytes) plus its read buffer, whatever the object's size.
type lineReader struct {
	br    *bufio.Reader
	limit int64
	buf   []byte
}

func newLineReader(r io.Reader, limit int64) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), limit: limit}
}

func (l *lineReader) next() (record, error) {
	for {
		l.buf = l.buf[:0]
		var err error
		for {
			var frag []byte
			frag, err = l.br.ReadSlice('\n')
			if int64(len(l.buf)+len(frag)) > l.limit+1 { // +1: the newline is framing
				return record{}, &tooLarge{size: int64(len(l.buf) + len(frag))}
			}
			l.buf = append(l.buf, frag...)
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if err != nil && err != io.EOF {
			return record{}, err
		}
		if len(l.buf) == 0 && err == io.EOF {
			return record{}, io.EOF
		}
		data := bytes.TrimSuffix(l.buf, []byte("\n"))
		data = bytes.TrimSuffix(data, []byte("\r"))
		if len(data) == 0 {
			if err == io.EOF {
				return record{}, io.EOF
			}
			continue
		}
		if l.buf[len(l.buf)-1] != '\n' {
			l.buf = append(l.buf, '\n')
			data = l.buf[:len(data)]
		}
		return record{data: data, raw: l.buf}, nil
	}
}

// SageMaker's RecordIO (MXNet's format): each frame is a little-endian
// uint32 magic, a uint32 whose top 3 bits are a continuation flag and low
// 29 bits the payload length, the payload, and zero padding to a multiple
// of 4 bytes. Flag 0 is a whole record; 1, 2, 3 are the first, middle and
// last parts of a record split across frames.
const (
	recordIOMagic   = 0xced7230a
	recordIOLenMask = 1<<29 - 1
)

// recordIOReader reads RecordIO records, joining split records.
type recordIOReader struct {
	r      io.Reader
	limit  int64
	offset int64 // of the next frame
	hdr    [8]byte
	data   []byte
	raw    []byte
}

func newRecordIOReader(r io.Reader, limit int64) *recordIOReader {
	return &recordIOReader{r: bufio.NewReaderSize(r, 64<<10), limit: limit}
}

func (rr *recordIOReader) next() (record, error) {
	rr.data, rr.raw = rr.data[:0], rr.raw[:0]
	for part := 0; ; part++ {
		at := rr.offset
		if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
			if err == io.EOF && part == 0 {
				return record{}, io.EOF
			}
			return record{}, fmt.Errorf("RecordIO: truncated header at byte %d", at)
		}
		if m := binary.LittleEndian.Uint32(rr.hdr[:4]); m != recordIOMagic {
			return record{}, fmt.Errorf("RecordIO: bad magic 0x%08x at byte %d (want 0x%08x)", m, at, uint32(recordIOMagic))
		}
		lrec := binary.LittleEndian.Uint32(rr.hdr[4:])
		flag, n := lrec>>29, int64(lrec&recordIOLenMask)
		switch {
		case part == 0 && flag != 0 && flag != 1:
			return record{}, fmt.Errorf("RecordIO: frame at byte %d continues a record that was never started (flag %d)", at, flag)
		case part > 0 && flag != 2 && flag != 3:
			return record{}, fmt.Errorf("RecordIO: frame at byte %d starts a new record inside a split one (flag %d)", at, flag)
		case flag > 3:
			return record{}, fmt.Errorf("RecordIO: bad flag %d at byte %d", flag, at)
		}
		pad := (4 - n%4) % 4
		if int64(len(rr.raw))+8+n+pad > rr.limit {
			return record{}, &tooLarge{size: int64(len(rr.raw)) + 8 + n + pad}
		}
		rr.raw = append(rr.raw, rr.hdr[:]...)
		start := len(rr.raw)
		rr.raw = append(rr.raw, make([]byte, n+pad)...)
		if _, err := io.ReadFull(rr.r, rr.raw[start:]); err != nil {
			return record{}, fmt.Errorf("RecordIO: truncated record at byte %d (%d bytes declared)", at, n)
		}
		rr.data = append(rr.data, rr.raw[start:start+int(n)]...)
		rr.offset += 8 + n + pad
		if flag == 0 || flag == 3 {
			return record{data: rr.data, raw: rr.raw}, nil
		}
	}
}

// appendRecordIO frames data as one RecordIO record (for tests and
// writers of RecordIO input).
func appendRecordIO(dst, data []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, recordIOMagic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	dst = append(dst, data...)
	return append(dst, make([]byte, (4-len(data)%4)%4)...)
}
