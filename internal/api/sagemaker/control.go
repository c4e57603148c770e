// Package sagemaker adapts SageMaker's wire protocols to the hosting
// service: the control plane (AWS JSON 1.1, X-Amz-Target SageMaker.<Op>)
// and the runtime (REST JSON, /endpoints/{name}/invocations...). It holds
// no business logic: it decodes, calls hosting, and encodes results and
// errors exactly as SageMaker does.
//
// It imports hosting, transform, catalog, apierr and awsproto; nothing imports it but
// the composition root.
package sagemaker

import (
	"log/slog"
	"net/http"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/hosting"
)

// controlCodes is the control plane's error table.
var controlCodes = awsproto.ErrorCodes{
	apierr.Internal:        {500, "InternalFailure"},
	apierr.Validation:      {400, "ValidationException"},
	apierr.NotFound:        {400, "ResourceNotFound"},
	apierr.LimitExceeded:   {400, "ResourceLimitExceeded"},
	apierr.InUse:           {400, "ResourceInUse"},
	apierr.Throttled:       {400, "ThrottlingException"},
	apierr.NotReady:        {400, "ValidationException"},
	apierr.Unavailable:     {503, "ServiceUnavailable"},
	apierr.Model:           {400, "ValidationException"},
	apierr.PayloadTooLarge: {413, "ValidationException"},
	apierr.Unauthorized:    {403, "AccessDeniedException"},
}

// Control returns the SageMaker control-plane service.
func Control(h *hosting.Service, log *slog.Logger) *awsproto.JSONService {
	c := &control{h: h}
	return &awsproto.JSONService{
		Prefix: "SageMaker",
		Codes:  controlCodes,
		Log:    log.With("component", "api.sagemaker"),
		Ops: map[string]awsproto.Op{
			"CreateModel":                        c.createModel,
			"DescribeModel":                      c.describeModel,
			"ListModels":                         c.listModels,
			"DeleteModel":                        c.deleteModel,
			"CreateEndpointConfig":               c.createEndpointConfig,
			"DescribeEndpointConfig":             c.describeEndpointConfig,
			"ListEndpointConfigs":                c.listEndpointConfigs,
			"DeleteEndpointConfig":               c.deleteEndpointConfig,
			"CreateEndpoint":                     c.createEndpoint,
			"DescribeEndpoint":                   c.describeEndpoint,
			"ListEndpoints":                      c.listEndpoints,
			"UpdateEndpoint":                     c.updateEndpoint,
			"UpdateEndpointWeightsAndCapacities": c.updateWeights,
			"DeleteEndpoint":                     c.deleteEndpoint,
		},
	}
}

type control struct{ h *hosting.Service }

type nameInput struct {
	ModelName          string
	EndpointConfigName string
	EndpointName       string
}

func (c *control) createModel(r *http.Request, body []byte) (any, error) {
	var in catalog.Model
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	m, err := c.h.CreateModel(r.Context(), &in)
	if err != nil {
		return nil, err
	}
	return map[string]string{"ModelArn": m.ModelArn}, nil
}

func (c *control) describeModel(r *http.Request, body []byte) (any, error) {
	var in nameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	m, err := c.h.DescribeModel(r.Context(), in.ModelName)
	if err != nil {
		return nil, err
	}
	out := *m
	out.Tags = nil
	return out, nil
}

func (c *control) deleteModel(r *http.Request, body []byte) (any, error) {
	var in nameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	return nil, c.h.DeleteModel(r.Context(), in.ModelName)
}

func (c *control) listModels(r *http.Request, body []byte) (any, error) {
	var in listInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	ms, err := c.h.ListModels(r.Context())
	if err != nil {
		return nil, err
	}
	items := make([]listItem, 0, len(ms))
	for _, m := range ms {
		items = append(items, listItem{name: m.ModelName, created: m.CreationTime, value: map[string]any{
			"ModelName": m.ModelName, "ModelArn": m.ModelArn, "CreationTime": m.CreationTime,
		}})
	}
	page, next, err := in.apply(items)
	if err != nil {
		return nil, err
	}
	return listOutput("Models", page, next), nil
}

func (c *control) createEndpointConfig(r *http.Request, body []byte) (any, error) {
	var in catalog.EndpointConfig
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	ec, err := c.h.CreateEndpointConfig(r.Context(), &in)
	if err != nil {
		return nil, err
	}
	return map[string]string{"EndpointConfigArn": ec.EndpointConfigArn}, nil
}

func (c *control) describeEndpointConfig(r *http.Request, body []byte) (any, error) {
	var in nameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	ec, err := c.h.DescribeEndpointConfig(r.Context(), in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	out := *ec
	out.Tags = nil
	return out, nil
}

func (c *control) deleteEndpointConfig(r *http.Request, body []byte) (any, error) {
	var in nameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	return nil, c.h.DeleteEndpointConfig(r.Context(), in.EndpointConfigName)
}

func (c *control) listEndpointConfigs(r *http.Request, body []byte) (any, error) {
	var in listInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	cs, err := c.h.ListEndpointConfigs(r.Context())
	if err != nil {
		return nil, err
	}
	items := make([]listItem, 0, len(cs))
	for _, ec := range cs {
		items = append(items, listItem{name: ec.EndpointConfigName, created: ec.CreationTime, value: map[string]any{
			"EndpointConfigName": ec.EndpointConfigName, "EndpointConfigArn": ec.EndpointConfigArn, "CreationTime": ec.CreationTime,
		}})
	}
	page, next, err := in.apply(items)
	if err != nil {
		return nil, err
	}
	return listOutput("EndpointConfigs", page, next), nil
}

func (c *control) createEndpoint(r *http.Request, body []byte) (any, error) {
	var in struct {
		EndpointName, EndpointConfigName string
		Tags                             []catalog.Tag
	}
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	ep, err := c.h.CreateEndpoint(r.Context(), in.EndpointName, in.EndpointConfigName, in.Tags)
	if err != nil {
		return nil, err
	}
	return map[string]string{"EndpointArn": ep.EndpointArn}, nil
}

func (c *control) describeEndpoint(r *http.Request, body []byte) (any, error) {
	var in nameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	return c.h.DescribeEndpoint(r.Context(), in.EndpointName)
}

func (c *control) listEndpoints(r *http.Request, body []byte) (any, error) {
	var in listInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	eps, err := c.h.ListEndpoints(r.Context())
	if err != nil {
		return nil, err
	}
	items := make([]listItem, 0, len(eps))
	for _, ep := range eps {
		items = append(items, listItem{name: ep.EndpointName, created: ep.CreationTime, modified: ep.LastModifiedTime, status: ep.EndpointStatus, value: map[string]any{
			"EndpointName": ep.EndpointName, "EndpointArn": ep.EndpointArn, "CreationTime": ep.CreationTime,
			"LastModifiedTime": ep.LastModifiedTime, "EndpointStatus": ep.EndpointStatus,
		}})
	}
	page, next, err := in.apply(items)
	if err != nil {
		return nil, err
	}
	return listOutput("Endpoints", page, next), nil
}

func (c *control) updateEndpoint(r *http.Request, body []byte) (any, error) {
	var in struct {
		EndpointName, EndpointConfigName string
		RetainAllVariantProperties       bool
		ExcludeRetainedVariantProperties []struct{ VariantPropertyType string }
	}
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	opts := hosting.UpdateOptions{RetainAllVariantProperties: in.RetainAllVariantProperties}
	for _, e := range in.ExcludeRetainedVariantProperties {
		opts.Excluded = append(opts.Excluded, e.VariantPropertyType)
	}
	ep, err := c.h.UpdateEndpoint(r.Context(), in.EndpointName, in.EndpointConfigName, opts)
	if err != nil {
		return nil, err
	}
	return map[string]string{"EndpointArn": ep.EndpointArn}, nil
}

func (c *control) updateWeights(r *http.Request, body []byte) (any, error) {
	var in struct {
		EndpointName                string
		DesiredWeightsAndCapacities []hosting.DesiredWeightAndCapacity
	}
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	ep, err := c.h.UpdateEndpointWeightsAndCapacities(r.Context(), in.EndpointName, in.DesiredWeightsAndCapacities)
	if err != nil {
		return nil, err
	}
	return map[string]string{"EndpointArn": ep.EndpointArn}, nil
}

func (c *control) deleteEndpoint(r *http.Request, body []byte) (any, error) {
	var in nameInput
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	return nil, c.h.DeleteEndpoint(r.Context(), in.EndpointName)
}

// listOutput omits NextToken on the last page, as SageMaker does.
func listOutput(key string, page []any, next string) map[string]any {
	out := map[string]any{key: page}
	if next != "" {
		out["NextToken"] = next
	}
	return out
}
