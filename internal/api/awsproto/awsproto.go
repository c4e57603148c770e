// Package awsproto holds what every AWS wire protocol inferbox speaks has
// in common: SigV4 verification, request ids, the AWS JSON 1.1 dispatcher
// (X-Amz-Target), and error encoding for awsJson1_1 and restJson1.
//
// It imports apierr only; service adapters import it.
package awsproto

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
)

// ErrorCodes maps an error kind to a protocol's status and error code.
type ErrorCodes map[apierr.Kind]struct {
	Status int
	Code   string
}

// Lookup returns the status and code for e, honouring e.Code overrides.
func (c ErrorCodes) Lookup(e *apierr.Error) (int, string) {
	ec, ok := c[e.Kind]
	if !ok {
		ec = c[apierr.Internal]
	}
	code := ec.Code
	if e.Code != "" {
		code = e.Code
	}
	return ec.Status, code
}

// RequestID returns a new request id (a UUID v4 as AWS's look).
func RequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// WriteJSON writes v as an application/x-amz-json-1.1 (or given content
// type) response.
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"__type":"InternalFailure","message":"response encoding failed"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteJSONError writes an awsJson1_1 error: {"__type": code, "message": msg}.
func WriteJSONError(w http.ResponseWriter, codes ErrorCodes, err error, log *slog.Logger) {
	e := apierr.As(err)
	status, code := codes.Lookup(e)
	if status >= 500 {
		log.Error("request failed", "code", code, "err", err)
	}
	w.Header().Set("X-Amzn-ErrorType", code)
	WriteJSON(w, status, "application/x-amz-json-1.1", map[string]any{"__type": code, "message": e.Message})
}

// WriteRESTError writes a restJson1 error: X-Amzn-ErrorType header and a
// JSON body with the error's members. A status with no code (e.g. 413)
// is written without a type, as AWS's front end does.
func WriteRESTError(w http.ResponseWriter, codes ErrorCodes, err error, log *slog.Logger) {
	e := apierr.As(err)
	status, code := codes.Lookup(e)
	if status >= 500 {
		log.Error("request failed", "code", code, "err", err)
	}
	body := map[string]any{"message": e.Message}
	if code != "" {
		w.Header().Set("X-Amzn-ErrorType", code)
		body["__type"] = code
	}
	if e.Kind == apierr.Model {
		body["Message"] = e.Message
		delete(body, "message")
		body["OriginalStatusCode"] = e.OriginalStatusCode
		body["OriginalMessage"] = e.OriginalMessage
	}
	WriteJSON(w, status, "application/json", body)
}

// Op is one AWS JSON 1.1 operation: it decodes its input from the body and
// returns its output (marshalled as JSON) or an error.
type Op func(r *http.Request, body []byte) (any, error)

// JSONService dispatches AWS JSON 1.1 requests on X-Amz-Target.
type JSONService struct {
	Prefix string // target prefix, e.g. "SageMaker"
	Ops    map[string]Op
	Codes  ErrorCodes
	Log    *slog.Logger
}

// Handles reports whether target belongs to this service.
func (s *JSONService) Handles(target string) bool {
	return strings.HasPrefix(target, s.Prefix+".")
}

// ServeHTTP runs the operation named by X-Amz-Target.
func (s *JSONService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	name := strings.TrimPrefix(target, s.Prefix+".")
	op, ok := s.Ops[name]
	if !ok {
		WriteJSONError(w, s.Codes, &apierr.Error{Kind: apierr.Validation, Code: "UnknownOperationException", Message: fmt.Sprintf("The operation %s is not supported by inferbox.", name)}, s.Log)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		WriteJSONError(w, s.Codes, apierr.Validationf("reading request body: %v", err), s.Log)
		return
	}
	out, err := op(r, body)
	if err != nil {
		WriteJSONError(w, s.Codes, err, s.Log)
		return
	}
	if out == nil {
		out = struct{}{}
	}
	WriteJSON(w, http.StatusOK, "application/x-amz-json-1.1", out)
}

// Decode unmarshals an operation's input, refusing malformed JSON with
// the SerializationException AWS sends.
func Decode(body []byte, v any) error {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apierr.Error{Kind: apierr.Validation, Code: "SerializationException", Message: "Start of structure or map found where not expected, or malformed JSON: " + err.Error()}
	}
	return nil
}

type receivedKey struct{}

// WithReceived records when a request arrived, before any parsing or
// authentication, so OverheadLatency covers everything but the model.
func WithReceived(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, receivedKey{}, t)
}

// Received returns when the request arrived, or now if it was not recorded.
func Received(ctx context.Context) time.Time {
	if t, ok := ctx.Value(receivedKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}
