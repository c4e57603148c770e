// Package native is inferbox's own REST JSON API under /api/v1/, on the
// same listener as the AWS protocols, and the Go client the CLI uses over
// it. It is a thin adapter over hosting.Service and autoscale.Registry:
// it decodes, calls, and encodes; the rules live in the services. Bodies
// reuse the catalog record shapes (SageMaker's member names), so one mental
// model serves both APIs. Errors are the services' *apierr.Error, mapped by
// one table to an HTTP status and {"error":{"code":...,"message":...}}.
//
// Authentication: when access keys are configured every request must carry
// "Authorization: Bearer <access-key-id>:<secret>"; otherwise the API is
// open (the configuration only allows that on loopback).
//
// native imports hosting, async, autoscale, transform, catalog, apierr,
// invokehttp, cost and advisor (the cost routes); only
// the composition root (the handler) and the CLI (the Client) import it.
package native

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/hosting"
)

// Prefix is the path every native route starts with.
const Prefix = "/api/v1/"

// Headers the invocation route reads and writes.
const (
	HeaderTargetVariant  = "X-Inferbox-Target-Variant"
	HeaderInvokedVariant = "X-Inferbox-Invoked-Variant"
)

// maxControlBody bounds a control request's JSON body.
const maxControlBody = 1 << 20

// codes is the native API's one error table.
var codes = map[apierr.Kind]struct {
	Status int
	Code   string
}{
	apierr.Internal:        {http.StatusInternalServerError, "InternalError"},
	apierr.Validation:      {http.StatusBadRequest, "ValidationError"},
	apierr.NotFound:        {http.StatusNotFound, "NotFound"},
	apierr.LimitExceeded:   {http.StatusBadRequest, "LimitExceeded"},
	apierr.InUse:           {http.StatusConflict, "ResourceInUse"},
	apierr.Throttled:       {http.StatusTooManyRequests, "Throttled"},
	apierr.NotReady:        {http.StatusServiceUnavailable, "ModelNotReady"},
	apierr.Unavailable:     {http.StatusServiceUnavailable, "ServiceUnavailable"},
	apierr.Model:           {http.StatusFailedDependency, "ModelError"},
	apierr.PayloadTooLarge: {http.StatusRequestEntityTooLarge, "PayloadTooLarge"},
	apierr.Unauthorized:    {http.StatusUnauthorized, "Unauthorized"},
}

// API serves the native REST routes. Build it with New; it is an http.Handler
// for everything under Prefix.
type API struct {
	h    *hosting.Service
	as   *autoscale.Registry
	keys map[string]string // access key id → secret; empty: open
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the API over the hosting service and the autoscaling
// registry. keys maps access key ids to secrets; nil leaves the API open.
func New(h *hosting.Service, as *autoscale.Registry, keys map[string]string, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{h: h, as: as, keys: keys, log: log.With("component", "api.native"), mux: http.NewServeMux()}
	a.hostingRoutes()
	a.autoscalingRoutes()
	a.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, apierr.New(apierr.NotFound, "No route for %s %s.", r.Method, r.URL.Path))
	})
	return a
}

// ServeHTTP authenticates the request and dispatches it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authenticate(r); err != nil {
		a.writeError(w, err)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// authenticate checks the bearer credential and returns the caller's
// access key id ("" when the API is open).
func (a *API) authenticate(r *http.Request) (string, error) {
	if len(a.keys) == 0 {
		return "", nil
	}
	h := r.Header.Get("Authorization")
	cred, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return "", apierr.New(apierr.Unauthorized, "Missing credentials: send Authorization: Bearer <access-key-id>:<secret>.")
	}
	id, secret, ok := strings.Cut(strings.TrimSpace(cred), ":")
	want, known := a.keys[id]
	if !ok || !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return "", apierr.New(apierr.Unauthorized, "The access key or secret is not valid.")
	}
	return id, nil
}

// caller is the authenticated access key id, for the usage ledger.
func (a *API) caller(r *http.Request) string {
	id, _ := a.authenticate(r)
	return id
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"InternalError","message":"response encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (a *API) writeError(w http.ResponseWriter, err error) {
	e := apierr.As(err)
	c, ok := codes[e.Kind]
	if !ok {
		c = codes[apierr.Internal]
	}
	if c.Status >= 500 {
		a.log.Error("request failed", "code", c.Code, "err", err)
	}
	var b ErrorBody
	b.Error.Code, b.Error.Message = c.Code, e.Message
	writeJSON(w, c.Status, b)
}

// decode reads a JSON request body into v, refusing unknown members so a
// misspelt field is an error rather than silently ignored.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return apierr.Validationf("The request body is empty: a JSON object is required.")
		}
		return apierr.Validationf("The request body is not valid JSON for this operation: %v", err)
	}
	return nil
}

// handle adapts an operation returning (status, body, error) to a handler.
func (a *API) handle(pattern string, op func(r *http.Request) (int, any, error)) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		status, out, err := op(r)
		if err != nil {
			a.writeError(w, err)
			return
		}
		if out == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, out)
	})
}
