package sagemaker

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/api/invokehttp"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/runtime"
)

// runtimeCodes is the SageMaker runtime's error table.
var runtimeCodes = awsproto.ErrorCodes{
	apierr.Internal:        {500, "InternalFailure"},
	apierr.Validation:      {400, "ValidationError"},
	apierr.NotFound:        {400, "ValidationError"},
	apierr.LimitExceeded:   {400, "ValidationError"},
	apierr.InUse:           {400, "ValidationError"},
	apierr.Throttled:       {400, "ThrottlingException"},
	apierr.NotReady:        {429, "ModelNotReadyException"},
	apierr.Unavailable:     {503, "ServiceUnavailable"},
	apierr.Model:           {424, "ModelError"},
	apierr.PayloadTooLarge: {413, ""},
	apierr.Unauthorized:    {403, "AccessDeniedException"},
}

// Runtime serves the SageMaker runtime's REST routes.
type Runtime struct {
	h     *hosting.Service
	log   *slog.Logger
	async Submitter // nil: InvokeEndpointAsync is refused
}

// NewRuntime returns the runtime adapter.
func NewRuntime(h *hosting.Service, log *slog.Logger) *Runtime {
	return &Runtime{h: h, log: log.With("component", "api.sagemaker-runtime")}
}

// Register adds the runtime's routes to mux.
func (rt *Runtime) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /endpoints/{name}/invocations", rt.invoke)
	mux.HandleFunc("POST /endpoints/{name}/invocations-response-stream", rt.invokeStream)
	mux.HandleFunc("POST /endpoints/{name}/async-invocations", rt.invokeAsync)
}

// WriteError writes a runtime error.
func (rt *Runtime) WriteError(w http.ResponseWriter, err error) {
	awsproto.WriteRESTError(w, runtimeCodes, err, rt.log)
}

func (rt *Runtime) input(r *http.Request, contentType, accept string) *hosting.InvokeInput {
	return &hosting.InvokeInput{
		EndpointName:  r.PathValue("name"),
		TargetVariant: r.Header.Get("X-Amzn-SageMaker-Target-Variant"),
		Caller:        awsproto.Identify(r).AccessKeyID,
		Received:      awsproto.Received(r.Context()),
		Request: &runtime.Request{
			ContentType:      contentType,
			Accept:           accept,
			Body:             r.Body,
			Size:             r.ContentLength,
			CustomAttributes: r.Header.Get("X-Amzn-SageMaker-Custom-Attributes"),
			InferenceID:      r.Header.Get("X-Amzn-SageMaker-Inference-Id"),
		},
	}
}

// invoke is InvokeEndpoint: the model's response body is the HTTP body.
func (rt *Runtime) invoke(w http.ResponseWriter, r *http.Request) {
	iv, ok := rt.start(w, r, r.Header.Get("Accept"))
	if !ok {
		return
	}
	status := http.StatusOK
	defer func() { iv.Finish(status) }()
	if iv.ContentType != "" {
		w.Header().Set("Content-Type", iv.ContentType)
	}
	w.Header().Set("x-Amzn-Invoked-Production-Variant", iv.Variant)
	if iv.CustomAttributes != "" {
		w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", iv.CustomAttributes)
	}
	invokehttp.SetColdStart(w.Header(), iv)
	var cerr error
	status, cerr = invokehttp.Write(w, iv, func(err error) { rt.WriteError(w, err) })
	if cerr != nil {
		rt.log.Warn("response copy", "endpoint", r.PathValue("name"), "err", cerr)
	}
}

// start checks the body's size and starts the invocation; on failure it
// has written the error.
func (rt *Runtime) start(w http.ResponseWriter, r *http.Request, accept string) (*hosting.Invocation, bool) {
	if err := rt.checkBody(r); err != nil {
		rt.WriteError(w, err)
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, rt.h.MaxPayloadBytes())
	in := rt.input(r, r.Header.Get("Content-Type"), accept)
	in.RequestID = w.Header().Get("x-amzn-RequestId")
	iv, err := rt.h.Invoke(r.Context(), in)
	if err != nil {
		rt.WriteError(w, err)
		return nil, false
	}
	return iv, true
}

// checkBody refuses a body over the limit before anything reads it.
func (rt *Runtime) checkBody(r *http.Request) error {
	if r.ContentLength > rt.h.MaxPayloadBytes() {
		return &apierr.Error{Kind: apierr.PayloadTooLarge, Message: "HTTP content length exceeded " + itoa(rt.h.MaxPayloadBytes()) + " bytes."}
	}
	return nil
}

// invokeStream is InvokeEndpointWithResponseStream: whatever the model
// writes is sent as PayloadPart events as it arrives, in AWS event-stream
// framing encoded by the AWS SDK's encoder.
func (rt *Runtime) invokeStream(w http.ResponseWriter, r *http.Request) {
	iv, ok := rt.start(w, r, r.Header.Get("X-Amzn-SageMaker-Accept"))
	if !ok {
		return
	}
	status := http.StatusOK
	defer func() { iv.Finish(status) }()
	h := w.Header()
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	if iv.ContentType != "" {
		h.Set("X-Amzn-SageMaker-Content-Type", iv.ContentType)
	}
	h.Set("x-Amzn-Invoked-Production-Variant", iv.Variant)
	if iv.CustomAttributes != "" {
		h.Set("X-Amzn-SageMaker-Custom-Attributes", iv.CustomAttributes)
	}
	invokehttp.SetColdStart(h, iv)
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	bp := invokehttp.Buffer()
	defer invokehttp.PutBuffer(bp)
	buf := *bp
	for {
		n, rerr := iv.Body.Read(buf)
		if n > 0 {
			msg := eventstream.Message{Payload: buf[:n]}
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
			msg.Headers.Set(":event-type", eventstream.StringValue("PayloadPart"))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/octet-stream"))
			if err := enc.Encode(w, msg); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if errors.Is(rerr, io.EOF) {
			return
		}
		if rerr != nil {
			status = 424
			code := "StreamBroken"
			if errors.Is(rerr, r.Context().Err()) || strings.Contains(rerr.Error(), "deadline") {
				code = "ModelInvocationTimeExceeded"
			}
			msg := eventstream.Message{Payload: []byte(`{"Message":` + quote(rerr.Error()) + `,"ErrorCode":"` + code + `"}`)}
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
			msg.Headers.Set(":exception-type", eventstream.StringValue("ModelStreamError"))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
			_ = enc.Encode(w, msg)
			return
		}
	}
}

// invokeAsync answers for endpoints that are not asynchronous.
func (rt *Runtime) invokeAsync(w http.ResponseWriter, r *http.Request) {
	if rt.async != nil {
		rt.serveAsync(w, r)
		return
	}
	rt.WriteError(w, apierr.Validationf("Endpoint %s of account %s is not configured for asynchronous inference: its endpoint configuration has no AsyncInferenceConfig.", r.PathValue("name"), rt.h.AccountID()))
}
