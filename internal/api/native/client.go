package native

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/hosting"
)

// Error is a failure the server reported: its HTTP status, the native
// API's error code and the service's message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Client calls a server's native API. The zero value is not usable; build
// it with NewClient.
type Client struct {
	base      string // scheme://host[:port], no trailing slash
	accessKey string // "id:secret", or "" for an open server
	hc        *http.Client
}

// NewClient returns a client for the server at base (e.g.
// http://127.0.0.1:8080). accessKey is "<access-key-id>:<secret>", or ""
// for a server without access keys; hc nil means http.DefaultClient.
func NewClient(base, accessKey string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), accessKey: accessKey, hc: hc}
}

// Raw performs a request and returns the response body as the server sent
// it, for callers that print the API's JSON as is. A non-2xx answer is
// returned as *Error.
func (c *Client) Raw(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+Prefix+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	return b, nil
}

// do sends req with credentials and turns a non-2xx answer into *Error.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.accessKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.accessKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the inferbox server at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
		return nil, &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return nil, &Error{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s", req.Method, req.URL.Path, msg)}
}

// call performs a JSON request and decodes the response into out (if non-nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	b, err := c.Raw(ctx, method, path, in)
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// callT performs a JSON request and decodes the response as a T.
func callT[T any](ctx context.Context, c *Client, method, path string, in any) (*T, error) {
	var out T
	if err := c.call(ctx, method, path, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func esc(s string) string { return url.PathEscape(s) }

// Path helpers, for Raw.

// ModelPath is the path of a model ("" for the collection).
func ModelPath(name string) string { return join("models", name) }

// EndpointConfigPath is the path of an endpoint config ("" for the collection).
func EndpointConfigPath(name string) string { return join("endpoint-configs", name) }

// EndpointPath is the path of an endpoint ("" for the collection).
func EndpointPath(name string) string { return join("endpoints", name) }

// AutoscalingPath is the path of a variant's autoscaling resource.
func AutoscalingPath(endpoint, variant string) string {
	return "endpoints/" + esc(endpoint) + "/variants/" + esc(variant) + "/autoscaling"
}

func join(coll, name string) string {
	if name == "" {
		return coll
	}
	return coll + "/" + esc(name)
}

// CreateModel registers a model.
func (c *Client) CreateModel(ctx context.Context, m *catalog.Model) (*catalog.Model, error) {
	return callT[catalog.Model](ctx, c, http.MethodPost, ModelPath(""), m)
}

// ListModels returns every model, oldest first.
func (c *Client) ListModels(ctx context.Context) ([]*catalog.Model, error) {
	out, err := callT[ModelList](ctx, c, http.MethodGet, ModelPath(""), nil)
	if err != nil {
		return nil, err
	}
	return out.Models, nil
}

// DescribeModel returns a model.
func (c *Client) DescribeModel(ctx context.Context, name string) (*catalog.Model, error) {
	return callT[catalog.Model](ctx, c, http.MethodGet, ModelPath(name), nil)
}

// DeleteModel deletes a model.
func (c *Client) DeleteModel(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, ModelPath(name), nil, nil)
}

// CreateEndpointConfig stores an endpoint config.
func (c *Client) CreateEndpointConfig(ctx context.Context, ec *catalog.EndpointConfig) (*catalog.EndpointConfig, error) {
	return callT[catalog.EndpointConfig](ctx, c, http.MethodPost, EndpointConfigPath(""), ec)
}

// ListEndpointConfigs returns every endpoint config, oldest first.
func (c *Client) ListEndpointConfigs(ctx context.Context) ([]*catalog.EndpointConfig, error) {
	out, err := callT[EndpointConfigList](ctx, c, http.MethodGet, EndpointConfigPath(""), nil)
	if err != nil {
		return nil, err
	}
	return out.EndpointConfigs, nil
}

// DescribeEndpointConfig returns an endpoint config.
func (c *Client) DescribeEndpointConfig(ctx context.Context, name string) (*catalog.EndpointConfig, error) {
	return callT[catalog.EndpointConfig](ctx, c, http.MethodGet, EndpointConfigPath(name), nil)
}

// DeleteEndpointConfig deletes an endpoint config.
func (c *Client) DeleteEndpointConfig(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, EndpointConfigPath(name), nil, nil)
}

// CreateEndpoint deploys an endpoint config; the endpoint starts Creating.
func (c *Client) CreateEndpoint(ctx context.Context, in CreateEndpointInput) (*hosting.EndpointDescription, error) {
	return callT[hosting.EndpointDescription](ctx, c, http.MethodPost, EndpointPath(""), in)
}

// ListEndpoints returns every endpoint, oldest first.
func (c *Client) ListEndpoints(ctx context.Context) ([]*hosting.EndpointDescription, error) {
	out, err := callT[EndpointList](ctx, c, http.MethodGet, EndpointPath(""), nil)
	if err != nil {
		return nil, err
	}
	return out.Endpoints, nil
}

// DescribeEndpoint returns an endpoint with its variants' counts and weights.
func (c *Client) DescribeEndpoint(ctx context.Context, name string) (*hosting.EndpointDescription, error) {
	return callT[hosting.EndpointDescription](ctx, c, http.MethodGet, EndpointPath(name), nil)
}

// UpdateEndpoint deploys another endpoint config to an endpoint.
func (c *Client) UpdateEndpoint(ctx context.Context, name string, in UpdateEndpointInput) (*hosting.EndpointDescription, error) {
	return callT[hosting.EndpointDescription](ctx, c, http.MethodPut, EndpointPath(name), in)
}

// UpdateCapacity changes variants' weights and instance counts in place.
func (c *Client) UpdateCapacity(ctx context.Context, name string, desired []hosting.DesiredWeightAndCapacity) (*hosting.EndpointDescription, error) {
	return callT[hosting.EndpointDescription](ctx, c, http.MethodPost, EndpointPath(name)+"/capacity", CapacityInput{DesiredWeightsAndCapacities: desired})
}

// DeleteEndpoint starts deleting an endpoint.
func (c *Client) DeleteEndpoint(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, EndpointPath(name), nil, nil)
}

// InvokeInput is one invocation.
type InvokeInput struct {
	ContentType string
	Accept      string
	Variant     string    // target variant; "" routes by weight
	Body        io.Reader // streamed to the server
}

// InvokeOutput is the model's response; the caller must close Body.
type InvokeOutput struct {
	ContentType string
	Variant     string // the variant that answered
	Body        io.ReadCloser
}

// Invoke sends a request to an endpoint and returns the model's response
// as it streams.
func (c *Client) Invoke(ctx context.Context, endpoint string, in InvokeInput) (*InvokeOutput, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+Prefix+EndpointPath(endpoint)+"/invocations", in.Body)
	if err != nil {
		return nil, err
	}
	if in.ContentType != "" {
		req.Header.Set("Content-Type", in.ContentType)
	}
	if in.Accept != "" {
		req.Header.Set("Accept", in.Accept)
	}
	if in.Variant != "" {
		req.Header.Set(HeaderTargetVariant, in.Variant)
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	return &InvokeOutput{ContentType: resp.Header.Get("Content-Type"), Variant: resp.Header.Get(HeaderInvokedVariant), Body: resp.Body}, nil
}

// PutAutoscaling registers a variant's scalable target and, if given, its
// target-tracking policy.
func (c *Client) PutAutoscaling(ctx context.Context, endpoint, variant string, in PutAutoscalingInput) (*Autoscaling, error) {
	return callT[Autoscaling](ctx, c, http.MethodPut, AutoscalingPath(endpoint, variant), in)
}

// GetAutoscaling returns a variant's scalable target and policies.
func (c *Client) GetAutoscaling(ctx context.Context, endpoint, variant string) (*Autoscaling, error) {
	return callT[Autoscaling](ctx, c, http.MethodGet, AutoscalingPath(endpoint, variant), nil)
}

// DeleteAutoscaling deregisters a variant's scalable target and its policies.
func (c *Client) DeleteAutoscaling(ctx context.Context, endpoint, variant string) error {
	return c.call(ctx, http.MethodDelete, AutoscalingPath(endpoint, variant), nil, nil)
}

// AutoscalingActivities returns a variant's recent scaling activities, newest first.
func (c *Client) AutoscalingActivities(ctx context.Context, endpoint, variant string) (*ActivityList, error) {
	return callT[ActivityList](ctx, c, http.MethodGet, AutoscalingPath(endpoint, variant)+"/activities", nil)
}
