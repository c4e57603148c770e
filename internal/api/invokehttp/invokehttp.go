// Package invokehttp writes a hosting invocation's response to an HTTP
// client, for every protocol adapter that answers synchronously with the
// model's own bytes (the SageMaker runtime, the native REST API): the
// status is committed only once the model has produced its first chunk,
// so a model that fails before any output is reported as an error rather
// than as a broken 200.
//
// It imports hosting, runtime and apierr; it knows no protocol's headers
// or error encoding (the caller passes its own error writer).
package invokehttp

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/runtime"
)

// chunk is how much of the response is read before the status is committed.
const chunk = 32 << 10

// buffers recycles response buffers: allocating one per request showed up
// as a fifth of the gateway's CPU under load.
var buffers = sync.Pool{New: func() any { b := make([]byte, chunk); return &b }}

// Buffer returns a chunk-sized buffer; give it back with PutBuffer.
func Buffer() *[]byte { return buffers.Get().(*[]byte) }

// PutBuffer returns a buffer from Buffer.
func PutBuffer(b *[]byte) { buffers.Put(b) }

// Write streams iv's body to w under 200, after the caller has set its
// headers. If the model fails before producing its first chunk, fail is
// called with a Model error (for the caller to encode) and Write returns
// 424. It returns the status the client got; a failure after the first
// chunk can only cut the response short, and is returned as copyErr.
func Write(w http.ResponseWriter, iv *hosting.Invocation, fail func(error)) (status int, copyErr error) {
	bp := Buffer()
	defer PutBuffer(bp)
	buf := *bp
	n, rerr := io.ReadFull(iv.Body, buf)
	if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
		fail(StreamError(rerr))
		return http.StatusFailedDependency, nil
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(buf[:n]); err != nil {
		return http.StatusOK, err
	}
	if rerr == nil {
		if _, err := io.CopyBuffer(w, iv.Body, buf); err != nil {
			return http.StatusOK, err
		}
	}
	return http.StatusOK, nil
}

// StreamError is the Model error for a response body that broke while
// being read, worded as SageMaker's runtime words it.
func StreamError(err error) error {
	var me *runtime.ModelError
	if errors.As(err, &me) {
		code := strconv.Itoa(me.StatusCode)
		return &apierr.Error{Kind: apierr.Model, Message: "Received server error (" + code + ") from primary with message \"" + me.Message + "\".", OriginalStatusCode: me.StatusCode, OriginalMessage: me.Message, Err: err}
	}
	return &apierr.Error{Kind: apierr.Model, Message: "Received server error (500) from primary and could not load the entire response body.", OriginalStatusCode: 500, OriginalMessage: err.Error(), Err: err}
}

// ColdStartHeader tells the caller of a serverless endpoint whether its
// request paid a cold start, and how long the instance took to start:
// "false", or "true; duration_ms=12.3".
const ColdStartHeader = "X-Inferbox-Cold-Start"

// SetColdStart sets ColdStartHeader for serverless invocations.
func SetColdStart(h http.Header, iv *hosting.Invocation) {
	if !iv.Serverless {
		return
	}
	if iv.ColdStart <= 0 {
		h.Set(ColdStartHeader, "false")
		return
	}
	h.Set(ColdStartHeader, "true; duration_ms="+strconv.FormatFloat(float64(iv.ColdStart.Microseconds())/1000, 'f', 1, 64))
}
