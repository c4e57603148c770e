// Package openai serves the OpenAI-compatible API over the genai service:
// GET /v1/models, POST /v1/completions and POST /v1/chat/completions (with
// SSE streaming), and — when wired with WithFiles and WithBatches — the
// Files API (files.go) and the Batch API (batches.go) over genai.Batches.
// Errors take OpenAI's shape, {"error": {"message", "type", "param",
// "code"}}.
//
// Authentication: when access keys are configured, every request needs
// "Authorization: Bearer <key>" where key is an access key's secret, or
// "<access key id>:<secret>"; the access key id is the caller in the usage
// ledger. With no keys configured, requests are anonymous.
//
// openai imports genai, apierr, runtime/llama (sampling parameters),
// catalog (file and job records) and objstore (file bytes); never the
// ledger, pools' internals or the server.
package openai

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/genai"
)

// Prefix is the path prefix the handler serves.
const Prefix = "/v1/"

// maxBody bounds a request body.
const maxBody = 8 << 20

// Handler serves the OpenAI routes.
type Handler struct {
	svc  *genai.Service
	keys map[string]string // access key id → secret
	log  *slog.Logger
	mux  *http.ServeMux
	now  func() time.Time
	born int64 // the models' "created": when the server registered them

	files   *files         // WithFiles; nil: no Files API
	batches *genai.Batches // WithBatches; nil: no Batch API
}

// New returns the handler. keys are the server's access keys (auth.access_keys).
func New(svc *genai.Service, keys map[string]string, log *slog.Logger) *Handler {
	h := &Handler{svc: svc, keys: keys, log: log.With("component", "openai"), mux: http.NewServeMux(), now: time.Now}
	h.born = h.now().Unix()
	h.mux.HandleFunc("GET /v1/models", h.listModels)
	h.mux.HandleFunc("GET /v1/models/{model}", h.getModel)
	h.mux.HandleFunc("POST /v1/completions", h.completions)
	h.mux.HandleFunc("POST /v1/chat/completions", h.chatCompletions)
	h.mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: 404, typ: "invalid_request_error",
			msg: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)})
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller, err := h.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	r = r.WithContext(withCaller(r.Context(), caller))
	h.mux.ServeHTTP(w, r)
}

// authenticate checks the Bearer key and returns the caller's key id.
func (h *Handler) authenticate(r *http.Request) (string, *apiError) {
	if len(h.keys) == 0 {
		return "", nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", &apiError{status: 401, typ: "invalid_request_error", code: "invalid_api_key",
			msg: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}
	}
	for id, secret := range h.keys {
		if subtle.ConstantTimeCompare([]byte(token), []byte(secret)) == 1 ||
			subtle.ConstantTimeCompare([]byte(token), []byte(id+":"+secret)) == 1 {
			return id, nil
		}
	}
	return "", &apiError{status: 401, typ: "invalid_request_error", code: "invalid_api_key",
		msg: "Incorrect API key provided. You can find your API keys in your inferbox configuration (auth.access_keys)."}
}

// apiError is an OpenAI error object with its HTTP status.
type apiError struct {
	status int
	msg    string
	typ    string
	param  string
	code   string
}

func (e *apiError) Error() string { return e.msg }

func invalid(param, format string, args ...any) *apiError {
	return &apiError{status: 400, typ: "invalid_request_error", param: param, msg: fmt.Sprintf(format, args...)}
}

// toAPIError maps a service error onto OpenAI's statuses and types.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	e := apierr.As(err)
	switch e.Kind {
	case apierr.Validation:
		return &apiError{status: 400, typ: "invalid_request_error", msg: e.Message}
	case apierr.NotFound:
		return &apiError{status: 404, typ: "invalid_request_error", code: "model_not_found", param: "model", msg: e.Message}
	case apierr.Throttled, apierr.NotReady:
		return &apiError{status: 429, typ: "requests", code: "rate_limit_exceeded", msg: e.Message}
	case apierr.Unavailable:
		return &apiError{status: 503, typ: "server_error", msg: e.Message}
	}
	return &apiError{status: 500, typ: "server_error", msg: e.Message}
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) body() errorBody {
	b := errorBody{Message: e.msg, Type: e.typ}
	if e.param != "" {
		b.Param = &e.param
	}
	if e.code != "" {
		b.Code = &e.code
	}
	return b
}

func writeError(w http.ResponseWriter, err error) {
	e := toAPIError(err)
	writeJSON(w, e.status, map[string]any{"error": e.body()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":{"message":"response encoding failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return invalid("", "could not read the request body")
	}
	if len(b) > maxBody {
		return &apiError{status: 413, typ: "invalid_request_error", msg: "The request body is too large."}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return invalid("", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	return nil
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// inferbox extensions: the context length and the chat format in use.
	ContextLength int    `json:"context_length"`
	ChatFormat    string `json:"chat_format"`
}

func (h *Handler) modelOf(m genai.Info) modelObject {
	return modelObject{ID: m.ID, Object: "model", Created: h.born, OwnedBy: strings.ToLower(m.Provider), ContextLength: m.ContextLength, ChatFormat: m.ChatFormat}
}

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) {
	data := []modelObject{}
	for _, m := range h.svc.Models() {
		data = append(data, h.modelOf(m))
	}
	writeJSON(w, 200, map[string]any{"object": "list", "data": data})
}

func (h *Handler) getModel(w http.ResponseWriter, r *http.Request) {
	m, ok := h.svc.Model(r.PathValue("model"))
	if !ok {
		writeError(w, notFound(r.PathValue("model")))
		return
	}
	writeJSON(w, 200, h.modelOf(m))
}

// model resolves a request's model: a foundation model id, or a
// provisioned throughput's ARN (Info.ID then routes to it, as Bedrock's
// modelId does; not in a batch, which runs on shared capacity only). An
// imported model, named by name, id or ARN, is refused with Bedrock's
// on-demand message: only a provisioned throughput serves it.
func (h *Handler) model(ctx context.Context, name string) (genai.Info, error) {
	if _, rest, ok := strings.Cut(name, ":provisioned-model/"); ok && strings.HasPrefix(name, "arn:") {
		if genai.InBatch(ctx) {
			return genai.Info{}, invalid("model", "%s", genai.BatchProvisionedMessage)
		}
		info, ok := h.svc.ProvisionedModel(rest)
		if !ok {
			return genai.Info{}, notFound(name)
		}
		return info, nil
	}
	if info, ok := h.svc.Model(name); ok {
		return info, nil
	}
	if err := h.svc.OnDemandError(name); errors.Is(err, genai.ErrOnDemandCustom) {
		return genai.Info{}, &apiError{status: 400, typ: "invalid_request_error", param: "model",
			msg: genai.OnDemandCustomMessage}
	}
	return genai.Info{}, notFound(name)
}

func notFound(model string) *apiError {
	return &apiError{status: 404, typ: "invalid_request_error", code: "model_not_found", param: "model",
		msg: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model)}
}
