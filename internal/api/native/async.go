package native

import (
	"context"
	"net/http"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/async"
)

// AsyncService is the async mode as the native API needs it.
type AsyncService interface {
	Submit(ctx context.Context, in *async.SubmitInput) (*async.Accepted, error)
	Status(ctx context.Context, endpoint, id string) (*async.Status, error)
}

// AsyncInvokeInput is POST /api/v1/endpoints/{name}/async-invocations:
// InvokeEndpointAsync's parameters as JSON members (SageMaker's names).
type AsyncInvokeInput struct {
	InputLocation            string `json:"InputLocation"`
	ContentType              string `json:"ContentType,omitempty"`
	Accept                   string `json:"Accept,omitempty"`
	CustomAttributes         string `json:"CustomAttributes,omitempty"`
	InferenceId              string `json:"InferenceId,omitempty"`
	RequestTTLSeconds        int    `json:"RequestTTLSeconds,omitempty"`
	InvocationTimeoutSeconds int    `json:"InvocationTimeoutSeconds,omitempty"`
}

// AsyncInvocation is an async request: the 202 answer to a submission,
// and GET /api/v1/endpoints/{name}/async-invocations/{id}. Status is
// Pending, Completed or Failed (see async.Service.Status: an id that was
// never submitted reads Pending).
type AsyncInvocation struct {
	InferenceId     string `json:"InferenceId"`
	Status          string `json:"Status"`
	OutputLocation  string `json:"OutputLocation"`
	FailureLocation string `json:"FailureLocation"`
	FailureReason   string `json:"FailureReason,omitempty"`
}

// RegisterAsync adds the async routes over s; without it they answer
// NotFound like any unknown route. The composition root calls it once,
// before serving.
func (a *API) RegisterAsync(s AsyncService) {
	a.handle("POST "+Prefix+"endpoints/{name}/async-invocations", func(r *http.Request) (int, any, error) {
		var in AsyncInvokeInput
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		if in.InputLocation == "" {
			return 0, nil, apierr.Validationf("InputLocation is required: upload the input to the object store first.")
		}
		acc, err := s.Submit(r.Context(), &async.SubmitInput{
			EndpointName: r.PathValue("name"), InputLocation: in.InputLocation,
			ContentType: in.ContentType, Accept: in.Accept, CustomAttributes: in.CustomAttributes,
			InferenceID:    in.InferenceId,
			RequestTTL:     time.Duration(in.RequestTTLSeconds) * time.Second,
			InvocationTime: time.Duration(in.InvocationTimeoutSeconds) * time.Second,
			Caller:         a.caller(r),
		})
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, &AsyncInvocation{InferenceId: acc.InferenceID, Status: async.StatusPending,
			OutputLocation: acc.OutputLocation, FailureLocation: acc.FailureLocation}, nil
	})
	a.handle("GET "+Prefix+"endpoints/{name}/async-invocations/{id}", func(r *http.Request) (int, any, error) {
		st, err := s.Status(r.Context(), r.PathValue("name"), r.PathValue("id"))
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, &AsyncInvocation{InferenceId: st.InferenceID, Status: st.Status,
			OutputLocation: st.OutputLocation, FailureLocation: st.FailureLocation, FailureReason: st.FailureReason}, nil
	})
}

// AsyncInvocationsPath is the path of an endpoint's async invocations, or
// of one of them by id.
func AsyncInvocationsPath(endpoint, id string) string {
	return join("endpoints/"+esc(endpoint)+"/async-invocations", id)
}

// InvokeAsync queues a request whose input is already in the object store.
func (c *Client) InvokeAsync(ctx context.Context, endpoint string, in AsyncInvokeInput) (*AsyncInvocation, error) {
	return callT[AsyncInvocation](ctx, c, http.MethodPost, AsyncInvocationsPath(endpoint, ""), in)
}

// AsyncStatus reports one async inference by id.
func (c *Client) AsyncStatus(ctx context.Context, endpoint, id string) (*AsyncInvocation, error) {
	return callT[AsyncInvocation](ctx, c, http.MethodGet, AsyncInvocationsPath(endpoint, id), nil)
}
