// Package bedrock serves the Amazon Bedrock wire APIs over the genai
// service: the runtime (InvokeModel and InvokeModelWithResponseStream
// with the Meta Llama, Amazon Titan Text and Mistral bodies (bodies.go),
// Converse, ConverseStream), batch inference jobs (batch.go) and the
// control plane's foundation-model catalog (ListFoundationModels,
// GetFoundationModel), provisioned throughput and custom model import
// (import.go). Both are REST JSON signed as service "bedrock".
//
// bedrock imports genai, awsproto, apierr and runtime/llama (for
// sampling parameters); it never reaches pools, the ledger or the server.
package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/api/streamwrite"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/genai"
)

// maxBody is InvokeModel's body limit (25,000,000 bytes in the service model).
const maxBody = 25_000_000

// codes is Bedrock's error table. An unknown model id is a 400
// ValidationException on the runtime, as Bedrock answers it.
var codes = awsproto.ErrorCodes{
	apierr.Internal:        {500, "InternalServerException"},
	apierr.Validation:      {400, "ValidationException"},
	apierr.NotFound:        {400, "ValidationException"},
	apierr.LimitExceeded:   {400, "ServiceQuotaExceededException"},
	apierr.Throttled:       {429, "ThrottlingException"},
	apierr.NotReady:        {429, "ModelNotReadyException"},
	apierr.Unavailable:     {503, "ServiceUnavailableException"},
	apierr.Model:           {424, "ModelErrorException"},
	apierr.PayloadTooLarge: {413, ""},
	apierr.Unauthorized:    {403, "AccessDeniedException"},
}

// Handler serves the Bedrock routes.
type Handler struct {
	svc *genai.Service
	log *slog.Logger
	arn func(modelID string) string

	region, account string // in provisioned-model ARNs
}

// New returns the Bedrock handler; region appears in foundation-model
// ARNs (which carry no account).
func New(svc *genai.Service, region string, log *slog.Logger) *Handler {
	return &Handler{svc: svc, log: log.With("component", "bedrock"), region: region, arn: func(id string) string {
		return "arn:aws:bedrock:" + region + "::foundation-model/" + id
	}}
}

// Register mounts the routes on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /model/{modelId}/invoke", h.invoke)
	mux.HandleFunc("POST /model/{modelId}/invoke-with-response-stream", h.invokeStream)
	mux.HandleFunc("POST /model/{modelId}/converse", h.converse)
	mux.HandleFunc("POST /model/{modelId}/converse-stream", h.converseStream)
	mux.HandleFunc("GET /foundation-models", h.listModels)
	mux.HandleFunc("GET /foundation-models/{modelIdentifier}", h.getModel)
	h.registerProvisioned(mux)
	h.registerImport(mux)
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	awsproto.WriteRESTError(w, codes, err, h.log)
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, apierr.Validationf("could not read the request body")
	}
	if len(b) > maxBody {
		return nil, apierr.Validationf("Input is too long for requested model.")
	}
	return b, nil
}

// modelOf resolves the {modelId} path value: a model id, a
// foundation-model ARN or a provisioned-model ARN (whose Info.ID routes to
// the provisioned throughput). An imported model named directly is
// refused: only a provisioned throughput serves it.
func (h *Handler) modelOf(r *http.Request) (genai.Info, error) {
	id := r.PathValue("modelId")
	if _, rest, ok := strings.Cut(id, ":provisioned-model/"); ok {
		info, ok := h.svc.ProvisionedModel(rest)
		if !ok {
			return genai.Info{}, apierr.Validationf("The provided model identifier is invalid.")
		}
		return info, nil
	}
	if _, rest, ok := strings.Cut(id, ":foundation-model/"); ok {
		id = rest
	}
	info, ok := h.svc.Model(id)
	if !ok {
		return genai.Info{}, h.svc.OnDemandError(id)
	}
	return info, nil
}

func setUsageHeaders(w http.ResponseWriter, r genai.Result) {
	w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(r.InputTokens))
	w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", strconv.Itoa(r.OutputTokens))
	w.Header().Set("X-Amzn-Bedrock-Invocation-Latency", strconv.FormatInt(r.Latency.Milliseconds(), 10))
}

// eventWriter writes an event stream whose HTTP response starts lazily:
// until the first event, a failure can still be an ordinary error reply.
// Events are encoded here and written by a streamwrite.Writer goroutine
// (coalesced when the client falls behind); close must be called before
// the handler returns.
type eventWriter struct {
	w       http.ResponseWriter
	out     *streamwrite.Writer
	enc     *eventstream.Encoder
	started bool
	header  func(http.Header)
}

// newEventWriter starts the stream's writer goroutine; ctx is the request's.
func newEventWriter(ctx context.Context, w http.ResponseWriter, header func(http.Header)) *eventWriter {
	return &eventWriter{w: w, out: streamwrite.New(ctx, w, 0), enc: eventstream.NewEncoder(), header: header}
}

func (e *eventWriter) start() {
	if e.started {
		return
	}
	e.started = true
	e.w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	if e.header != nil {
		e.header(e.w.Header())
	}
	e.w.WriteHeader(http.StatusOK)
}

// Header values every event of a type shares.
const (
	eventMessageType = eventstream.StringValue("event")
	jsonContentType  = eventstream.StringValue("application/json")
	exceptionMsgType = eventstream.StringValue("exception")
)

// event writes one event: eventType with a JSON payload.
func (e *eventWriter) event(eventType string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.message(eventMessageType, ":event-type", eventType, payload)
}

func (e *eventWriter) message(kind eventstream.StringValue, typeHeader, typ string, payload []byte) error {
	e.start()
	msg := eventstream.Message{Payload: payload, Headers: make(eventstream.Headers, 0, 3)}
	msg.Headers.Set(":message-type", kind)
	msg.Headers.Set(typeHeader, eventstream.StringValue(typ))
	msg.Headers.Set(":content-type", jsonContentType)
	return e.out.Event(func(b *bytes.Buffer) error { return e.enc.Encode(b, msg) })
}

// exception ends a started stream with an exception event (the member
// name in camel case, e.g. internalServerException).
func (e *eventWriter) exception(err error) {
	ae := apierr.As(err)
	_, code := codes.Lookup(ae)
	member := "internalServerException"
	switch code {
	case "ValidationException":
		member = "validationException"
	case "ThrottlingException":
		member = "throttlingException"
	case "ServiceUnavailableException":
		member = "serviceUnavailableException"
	case "ModelErrorException":
		member = "modelStreamErrorException"
	}
	payload, _ := json.Marshal(map[string]string{"message": ae.Message})
	_ = e.message(exceptionMsgType, ":exception-type", member, payload)
}

// close waits for the writer goroutine: the events are then all written
// (or the client is gone).
func (e *eventWriter) close() { _ = e.out.Close() }

// finishStream reports err on a stream: an HTTP error if nothing was sent
// yet, an exception event otherwise. It closes e.
func (h *Handler) finishStream(w http.ResponseWriter, e *eventWriter, err error) {
	if !e.started {
		e.close()
		h.fail(w, err)
		return
	}
	h.log.Warn("stream failed", "err", err)
	e.exception(err)
	e.close()
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func badf(format string, args ...any) error {
	return apierr.Validationf("%s", fmt.Sprintf(format, args...))
}
