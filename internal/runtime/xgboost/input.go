package xgboost

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/inferbox/inferbox/internal/runtime"
)

// rowReader reads input records as dense rows of nFeature float32 values,
// NaN for missing.
type rowReader interface {
	// read appends up to maxRows rows to buf and returns it. At the end of
	// the input it returns io.EOF, with the rows read before it. A bad
	// record is a *runtime.ModelError (400) naming the row.
	read(buf []float32, maxRows int) ([]float32, error)
}

// nan32 is a missing value.
func nan32() float32 { return float32(math.NaN()) }

// lineReader yields lines without their "\n" or "\r\n", counting them from 1.
type lineReader struct {
	br   *bufio.Reader
	line int
	long []byte // a line longer than br's buffer, being assembled
}

// newLineReader buffers r; size is the body's length when known (-1 if
// not), so a small request does not pay for a large buffer.
func newLineReader(r io.Reader, size int64) lineReader {
	n := 64 << 10
	if size >= 0 && size < int64(n) {
		n = max(int(size)+1, 16) // bufio's minimum is 16
	}
	return lineReader{br: bufio.NewReaderSize(r, n)}
}

// next returns the next line, valid until the following call, or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	l.long = l.long[:0]
	for {
		b, err := l.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			l.long = append(l.long, b...)
			continue
		}
		if len(l.long) > 0 {
			l.long = append(l.long, b...)
			b = l.long
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading request body: %w", err)
		}
		if err == io.EOF && len(b) == 0 {
			return nil, io.EOF
		}
		l.line++
		if l.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff")) // a byte-order mark from a spreadsheet
		}
		b = bytes.TrimSuffix(b, []byte{'\n'})
		b = bytes.TrimSuffix(b, []byte{'\r'})
		return b, nil
	}
}

// lineRecords reads one record per line (CSV, libsvm, JSON lines): blank
// lines are skipped, and parse appends a record's nf values to buf, naming
// the 1-based line in its errors.
type lineRecords struct {
	lines lineReader
	nf    int
	parse func(buf []float32, line []byte, nf, row int) ([]float32, error)
}

func (c *lineRecords) read(buf []float32, maxRows int) ([]float32, error) {
	for n := 0; n < maxRows; {
		line, err := c.lines.next()
		if err != nil {
			return buf, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		start := len(buf)
		buf, err = c.parse(buf, line, c.nf, c.lines.line)
		if err != nil {
			return buf[:start], err
		}
		n++
	}
	return buf, nil
}

// newCSVReader reads text/csv: no header, one label-free record per line;
// an empty field is a missing value.
func newCSVReader(r io.Reader, nFeature int, size int64) *lineRecords {
	return &lineRecords{lines: newLineReader(r, size), nf: nFeature, parse: parseCSVRecord}
}

// parseCSVRecord appends one record's nf values to buf.
func parseCSVRecord(buf []float32, line []byte, nf, row int) ([]float32, error) {
	field := 0
	for {
		i := bytes.IndexByte(line, ',')
		f := line
		if i >= 0 {
			f = line[:i]
		}
		field++
		if field > nf {
			return buf, runtime.BadInput("row %d: %d fields, model has %d features", row, bytes.Count(line, []byte{','})+nf+1, nf)
		}
		v, err := parseValue(f)
		if err != nil {
			return buf, runtime.BadInput("row %d: field %d: %q is not a number", row, field, bytes.TrimSpace(f))
		}
		buf = append(buf, v)
		if i < 0 {
			break
		}
		line = line[i+1:]
	}
	if field != nf {
		return buf, runtime.BadInput("row %d: %d fields, model has %d features", row, field, nf)
	}
	return buf, nil
}

// parseValue parses one CSV or libsvm value; empty is missing (NaN).
func parseValue(f []byte) (float32, error) {
	f = bytes.TrimSpace(f)
	if len(f) == 0 {
		return nan32(), nil
	}
	v, err := strconv.ParseFloat(string(f), 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return float32(v), nil // ±Inf or 0, as XGBoost's parser gives
		}
		return 0, err
	}
	return float32(v), nil
}

// newLibSVMReader reads "[label] index:value ..." records with 0-based feature
// indices, as XGBoost's libsvm parser does; absent features are missing.
func newLibSVMReader(r io.Reader, nFeature int, size int64) *lineRecords {
	return &lineRecords{lines: newLineReader(r, size), nf: nFeature, parse: func(buf []float32, line []byte, nf, row int) ([]float32, error) {
		start := len(buf)
		for range nf {
			buf = append(buf, nan32())
		}
		return buf, parseLibSVMRecord(buf[start:], line, row)
	}}
}

func parseLibSVMRecord(row []float32, line []byte, rowNum int) error {
	fields := bytes.Fields(line)
	for i, f := range fields {
		colon := bytes.IndexByte(f, ':')
		if colon < 0 {
			if i == 0 {
				continue // the label, which prediction ignores
			}
			return runtime.BadInput("row %d: token %d: %q is not index:value", rowNum, i+1, f)
		}
		idx, err := strconv.Atoi(string(f[:colon]))
		if err != nil || idx < 0 {
			return runtime.BadInput("row %d: token %d: feature index %q is not a non-negative integer", rowNum, i+1, f[:colon])
		}
		if idx >= len(row) {
			return runtime.BadInput("row %d: token %d: feature index %d out of range: model has %d features (indices are 0-based)", rowNum, i+1, idx, len(row))
		}
		v, err := parseValue(f[colon+1:])
		if err != nil || colon+1 == len(f) {
			return runtime.BadInput("row %d: token %d: %q is not a number", rowNum, i+1, f[colon+1:])
		}
		row[idx] = v
	}
	return nil
}

// newJSONLinesReader reads one JSON record per line: [1,2,...] or
// {"features":[1,2,...]}; null is a missing value.
func newJSONLinesReader(r io.Reader, nFeature int, size int64) *lineRecords {
	return &lineRecords{lines: newLineReader(r, size), nf: nFeature, parse: appendJSONRow}
}

// appendJSONRow parses [..] or {"features":[..]}, where null is a missing
// value, and appends the row's values.
func appendJSONRow(buf []float32, raw []byte, nf, row int) ([]float32, error) {
	raw = bytes.TrimSpace(raw)
	var vals []json.RawMessage
	var err error
	switch {
	case len(raw) > 0 && raw[0] == '[':
		err = json.Unmarshal(raw, &vals)
	case len(raw) > 0 && raw[0] == '{':
		var obj struct {
			Features *[]json.RawMessage `json:"features"`
		}
		err = json.Unmarshal(raw, &obj)
		if err == nil && obj.Features == nil {
			return buf, runtime.BadInput(`row %d: object has no "features" list`, row)
		}
		if obj.Features != nil {
			vals = *obj.Features
		}
	default:
		return buf, runtime.BadInput(`row %d: want a list of numbers or {"features":[...]}, got %.40s`, row, raw)
	}
	if err != nil {
		return buf, runtime.BadInput("row %d: %s", row, jsonProblem(err))
	}
	if len(vals) != nf {
		return buf, runtime.BadInput("row %d: %d features, model has %d", row, len(vals), nf)
	}
	for i, v := range vals {
		if string(v) == "null" {
			buf = append(buf, nan32())
			continue
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || v[0] == '"' {
			return buf, runtime.BadInput("row %d: feature %d: %.40s is not a number", row, i+1, v)
		}
		buf = append(buf, float32(f))
	}
	return buf, nil
}

// jsonProblem says what is wrong without encoding/json's Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s where a number was expected", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON: " + se.Error()
	}
	return "malformed JSON: " + err.Error()
}

// jsonReader streams application/json: {"instances":[row, ...]},
// {"features":[...]}, [row, ...] or a single [x, ...], where a row is
// [x, ...] or {"features":[x, ...]}.
type jsonReader struct {
	dec     *json.Decoder
	nf      int
	started bool
	pending []float32 // a row read during the prelude, returned first
	row     int
	done    bool
}

func newJSONReader(r io.Reader, nFeature int) *jsonReader {
	return &jsonReader{dec: json.NewDecoder(bufio.NewReaderSize(r, 64<<10)), nf: nFeature}
}

func (j *jsonReader) read(buf []float32, maxRows int) ([]float32, error) {
	if !j.started {
		j.started = true
		if err := j.prelude(); err != nil {
			j.done = true
			return buf, err
		}
	}
	n := 0
	if j.pending != nil {
		buf = append(buf, j.pending...)
		j.pending = nil
		n++
	}
	if j.done {
		return buf, io.EOF
	}
	for ; n < maxRows; n++ {
		if !j.dec.More() {
			j.done = true
			return buf, j.epilogue()
		}
		j.row++
		var raw json.RawMessage
		if err := j.dec.Decode(&raw); err != nil {
			j.done = true
			return buf, runtime.BadInput("row %d: %s", j.row, jsonProblem(err))
		}
		start := len(buf)
		var err error
		if buf, err = appendJSONRow(buf, raw, j.nf, j.row); err != nil {
			j.done = true
			return buf[:start], err
		}
	}
	return buf, nil
}

// prelude moves the decoder into the list of rows, or reads a single row.
func (j *jsonReader) prelude() error {
	tok, err := j.dec.Token()
	if err != nil {
		return runtime.BadInput("%s", jsonProblem(err))
	}
	switch tok {
	case json.Delim('['):
		return j.listPrelude()
	case json.Delim('{'):
		for j.dec.More() {
			key, err := j.dec.Token()
			if err != nil {
				return runtime.BadInput("%s", jsonProblem(err))
			}
			switch key {
			case "instances":
				tok, err := j.dec.Token()
				if err != nil {
					return runtime.BadInput("%s", jsonProblem(err))
				}
				if tok != json.Delim('[') {
					return runtime.BadInput(`"instances" must be a list`)
				}
				return nil
			case "features":
				var raw json.RawMessage
				if err := j.dec.Decode(&raw); err != nil {
					return runtime.BadInput("row 1: %s", jsonProblem(err))
				}
				j.row = 1
				if j.pending, err = appendJSONRow(make([]float32, 0, j.nf), raw, j.nf, 1); err != nil {
					return err
				}
				return j.finish()
			default:
				var skip json.RawMessage
				if err := j.dec.Decode(&skip); err != nil {
					return runtime.BadInput("%s", jsonProblem(err))
				}
			}
		}
		return runtime.BadInput(`JSON object has no "instances" list`)
	default:
		return runtime.BadInput(`want {"instances":[...]} or a list of rows, got %v`, tok)
	}
}

// listPrelude handles a top-level list: rows, or the values of one row.
func (j *jsonReader) listPrelude() error {
	if !j.dec.More() {
		return nil // [] has no rows
	}
	var first json.RawMessage
	if err := j.dec.Decode(&first); err != nil {
		return runtime.BadInput("row 1: %s", jsonProblem(err))
	}
	first = bytes.TrimSpace(first)
	if len(first) > 0 && (first[0] == '[' || first[0] == '{') {
		// A list of rows: the first one is already read.
		j.row = 1
		var err error
		j.pending, err = appendJSONRow(make([]float32, 0, j.nf), first, j.nf, 1)
		return err
	}
	// A single row: first is its first value.
	vals := [][]byte{first}
	for j.dec.More() {
		var v json.RawMessage
		if err := j.dec.Decode(&v); err != nil {
			return runtime.BadInput("row 1: %s", jsonProblem(err))
		}
		vals = append(vals, v)
	}
	joined := append([]byte{'['}, bytes.Join(vals, []byte{','})...)
	joined = append(joined, ']')
	j.row = 1
	var err error
	if j.pending, err = appendJSONRow(make([]float32, 0, j.nf), joined, j.nf, 1); err != nil {
		return err
	}
	return j.finish()
}

// finish checks the rest of a single-row document.
func (j *jsonReader) finish() error {
	j.done = true
	if err := j.epilogue(); err != io.EOF {
		return err
	}
	return nil
}

// epilogue consumes the closing brackets and refuses trailing data.
func (j *jsonReader) epilogue() error {
	for {
		tok, err := j.dec.Token()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return runtime.BadInput("%s", jsonProblem(err))
		}
		switch tok {
		case json.Delim(']'), json.Delim('}'):
			continue
		default:
			// Keys and values after "instances" are ignored.
			if _, ok := tok.(string); ok {
				var skip json.RawMessage
				if err := j.dec.Decode(&skip); err != nil {
					return runtime.BadInput("%s", jsonProblem(err))
				}
				continue
			}
			return runtime.BadInput("unexpected %v after the rows", tok)
		}
	}
}
