package sagemaker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/async"
)

// Submitter is the async mode as InvokeEndpointAsync needs it.
type Submitter interface {
	Submit(ctx context.Context, in *async.SubmitInput) (*async.Accepted, error)
}

// WithAsync makes the runtime serve InvokeEndpointAsync through a.
func (rt *Runtime) WithAsync(a Submitter) *Runtime {
	rt.async = a
	return rt
}

// serveAsync is InvokeEndpointAsync: the request is queued durably, then
// answered 202 with where its output and failure objects will be.
func (rt *Runtime) serveAsync(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	ttl, err := seconds(h, "X-Amzn-SageMaker-RequestTTLSeconds", "requestTTLSeconds")
	if err != nil {
		rt.WriteError(w, err)
		return
	}
	timeout, err := seconds(h, "X-Amzn-SageMaker-InvocationTimeoutSeconds", "invocationTimeoutSeconds")
	if err != nil {
		rt.WriteError(w, err)
		return
	}
	var body []byte
	if r.ContentLength != 0 {
		if r.ContentLength > async.MaxInlineBody {
			rt.WriteError(w, &apierr.Error{Kind: apierr.PayloadTooLarge, Message: "HTTP content length exceeded " + itoa(async.MaxInlineBody) + " bytes."})
			return
		}
		body, err = io.ReadAll(io.LimitReader(r.Body, async.MaxInlineBody+1))
		if err != nil {
			rt.WriteError(w, apierr.Validationf("reading the request body: %v", err))
			return
		}
		if len(body) == 0 {
			body = nil
		}
	}
	acc, err := rt.async.Submit(r.Context(), &async.SubmitInput{
		EndpointName:     r.PathValue("name"),
		InputLocation:    h.Get("X-Amzn-SageMaker-InputLocation"),
		Body:             body,
		ContentType:      h.Get("X-Amzn-SageMaker-Content-Type"),
		Accept:           h.Get("X-Amzn-SageMaker-Accept"),
		CustomAttributes: h.Get("X-Amzn-SageMaker-Custom-Attributes"),
		InferenceID:      h.Get("X-Amzn-SageMaker-Inference-Id"),
		RequestTTL:       ttl,
		InvocationTime:   timeout,
		Caller:           awsproto.Identify(r).AccessKeyID,
		Received:         awsproto.Received(r.Context()),
	})
	if err != nil {
		rt.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-SageMaker-OutputLocation", acc.OutputLocation)
	w.Header().Set("X-Amzn-SageMaker-FailureLocation", acc.FailureLocation)
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"InferenceId": acc.InferenceID})
}

// seconds reads an optional integer-seconds header.
func seconds(h http.Header, name, member string) (time.Duration, error) {
	v := h.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, apierr.Validationf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be an integer", v, member)
	}
	return time.Duration(n) * time.Second, nil
}
