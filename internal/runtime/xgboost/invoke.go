package xgboost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"strconv"
	"strings"

	"github.com/inferbox/inferbox/internal/runtime"
)

var (
	_ runtime.Model  = (*Model)(nil)
	_ runtime.Loader = (*Loader)(nil)
)

// Content types, as the SageMaker XGBoost container names them.
const (
	ContentCSV       = "text/csv"
	ContentLibSVM    = "text/libsvm"
	ContentJSON      = "application/json"
	ContentJSONLines = "application/jsonlines"
)

// Loader loads XGBoost models for the pool: runtime.Spec.ModelDir holds the
// model file (see Load), Spec.Threads bounds the goroutines one big batch
// may use.
type Loader struct{}

// NewLoader returns a Loader.
func NewLoader() *Loader { return &Loader{} }

// Load implements runtime.Loader.
func (*Loader) Load(ctx context.Context, spec runtime.Spec) (runtime.Model, error) {
	if spec.ModelDir == "" {
		return nil, errors.New("xgboost: no model artifact: the model needs ModelDataUrl pointing at an XGBoost JSON model")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := LoadWithOptions(spec.ModelDir, Options{Threads: spec.Threads})
	if err != nil {
		return nil, err
	}
	if spec.Logger != nil {
		spec.Logger.LogAttrs(ctx, slog.LevelInfo, "xgboost model loaded",
			slog.String("component", "runtime/xgboost"), slog.String("path", m.path),
			slog.String("objective", m.objective.name), slog.String("booster", m.booster),
			slog.Int("trees", len(m.roots)), slog.Int("features", m.nFeature),
			slog.String("saved_by", fmt.Sprintf("xgboost %d.%d.%d", m.version[0], m.version[1], m.version[2])))
	}
	return m, nil
}

// Invoke scores the records in req.Body (ContentType text/csv, text/libsvm,
// application/json or application/jsonlines) and answers in the Accept
// format (text/csv by default, application/json, application/jsonlines).
//
// Input of up to a few MB is read and checked before Invoke returns, so a
// bad record is a 400 ModelError naming its row. Beyond that the response
// body scores the rest of the input as it is read: req.Body must stay
// readable until the response body is drained or closed, and a bad record
// there is the error of the response body's Read.
func (m *Model) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	in, err := inputType(req.ContentType)
	if err != nil {
		return nil, err
	}
	out, err := outputType(req.Accept)
	if err != nil {
		return nil, err
	}
	var src rowReader
	switch in {
	case ContentCSV:
		src = newCSVReader(req.Body, m.nFeature, req.Size)
	case ContentLibSVM:
		src = newLibSVMReader(req.Body, m.nFeature, req.Size)
	case ContentJSON:
		src = newJSONReader(req.Body, m.nFeature)
	case ContentJSONLines:
		src = newJSONLinesReader(req.Body, m.nFeature, req.Size)
	}
	chunk := max(blockRows, (1<<18)/m.nFeature/blockRows*blockRows)
	s := &scoreStream{m: m, src: src, enc: encoder{format: out, width: m.NumOutputs()}, chunkRows: chunk}
	for !s.eof && s.rows < 8*chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.next(); err != nil {
			return nil, err
		}
	}
	if s.rows == 0 {
		return nil, runtime.BadInput("no records in the request body")
	}
	return &runtime.Response{ContentType: out, Body: s}, nil
}

// inputType maps a request content type to one this runtime reads.
func inputType(ct string) (string, error) {
	if strings.TrimSpace(ct) == "" {
		return ContentCSV, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		switch mt {
		case "text/csv":
			return ContentCSV, nil
		case "text/libsvm", "text/x-libsvm":
			return ContentLibSVM, nil
		case "application/json":
			return ContentJSON, nil
		case "application/jsonlines", "application/x-jsonlines", "application/jsonl":
			return ContentJSONLines, nil
		}
	}
	return "", &runtime.ModelError{StatusCode: 415, Message: fmt.Sprintf(
		"xgboost: content type %q is not supported: use text/csv, text/libsvm, application/json or application/jsonlines", ct)}
}

// outputType picks the first supported type in an Accept header.
func outputType(accept string) (string, error) {
	if strings.TrimSpace(accept) == "" {
		return ContentCSV, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		switch mt {
		case "text/csv", "*/*", "text/*":
			return ContentCSV, nil
		case "application/json", "application/*":
			return ContentJSON, nil
		case "application/jsonlines", "application/x-jsonlines", "application/jsonl":
			return ContentJSONLines, nil
		}
	}
	return "", &runtime.ModelError{StatusCode: 406, Message: fmt.Sprintf(
		"xgboost: accept type %q is not supported: use text/csv, application/json or application/jsonlines", accept)}
}

// scoreStream is a response body: it reads rows in chunks, scores them and
// encodes the scores.
type scoreStream struct {
	m         *Model
	src       rowReader
	enc       encoder
	chunkRows int
	data      []float32 // the current chunk's rows
	scores    []float32
	out       bytes.Buffer // encoded and not yet read
	rows      int          // rows scored so far
	eof       bool         // src is exhausted and the encoding finished
	err       error        // sticky error of a later chunk
}

// next scores one chunk into s.out.
func (s *scoreStream) next() error {
	var err error
	s.data, err = s.src.read(s.data[:0], s.chunkRows)
	if err != nil && err != io.EOF {
		return err
	}
	n := len(s.data) / s.m.nFeature
	if cap(s.scores) < n*s.m.NumOutputs() {
		s.scores = make([]float32, n*s.m.NumOutputs())
	}
	scores := s.scores[:n*s.m.NumOutputs()]
	s.m.PredictDense(s.data, scores)
	s.out.Write(s.enc.rows(s.out.AvailableBuffer(), scores, s.rows == 0))
	s.rows += n
	if err == io.EOF {
		s.eof = true
		s.out.Write(s.enc.end(s.out.AvailableBuffer(), s.rows == 0))
	}
	return nil
}

// Read implements io.Reader.
func (s *scoreStream) Read(p []byte) (int, error) {
	for s.out.Len() == 0 {
		if s.eof {
			return 0, io.EOF
		}
		if s.err != nil {
			return 0, s.err
		}
		s.err = s.next()
	}
	return s.out.Read(p)
}

// Close implements io.Closer. It does not close the request body.
func (s *scoreStream) Close() error {
	s.eof = true
	s.out.Reset()
	return nil
}

// encoder writes scores in one of the output formats.
type encoder struct {
	format string
	width  int // scores per row
}

// rows appends the encoding of scores (width per row) to b; first says no
// row was written before.
func (e encoder) rows(b []byte, scores []float32, first bool) []byte {
	for r := 0; r < len(scores)/e.width; r++ {
		row := scores[r*e.width : (r+1)*e.width]
		switch e.format {
		case ContentCSV:
			for i, v := range row {
				if i > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
			}
			b = append(b, '\n')
		case ContentJSON:
			if first && r == 0 {
				b = append(b, `{"predictions":[`...)
			} else {
				b = append(b, ',')
			}
			b = e.object(b, row)
		case ContentJSONLines:
			b = e.object(b, row)
			b = append(b, '\n')
		}
	}
	return b
}

// end appends what closes the document; empty says no row was written.
func (e encoder) end(b []byte, empty bool) []byte {
	if e.format != ContentJSON {
		return b
	}
	if empty {
		return append(b, `{"predictions":[]}`...)
	}
	return append(b, "]}"...)
}

// object appends {"score":x} or, for several scores per row, {"score":[x,...]}.
func (e encoder) object(b []byte, row []float32) []byte {
	b = append(b, `{"score":`...)
	if e.width == 1 {
		b = jsonFloat(b, row[0])
	} else {
		b = append(b, '[')
		for i, v := range row {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonFloat(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// jsonFloat appends v as the shortest float32 text, or null when JSON
// cannot hold it.
func jsonFloat(b []byte, v float32) []byte {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}
