// Package autoscaling adapts Application Auto Scaling's wire protocol (AWS
// JSON 1.1, X-Amz-Target AnyScaleFrontendService.<Op>) to the autoscale
// registry. It decodes, calls, and encodes; the rules live in autoscale.
//
// It imports autoscale, catalog, apierr and awsproto; only the composition
// root imports it.
package autoscaling

import (
	"log/slog"
	"net/http"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/catalog"
)

var codes = awsproto.ErrorCodes{
	apierr.Internal:      {500, "InternalServiceException"},
	apierr.Validation:    {400, "ValidationException"},
	apierr.NotFound:      {400, "ObjectNotFoundException"},
	apierr.LimitExceeded: {400, "LimitExceededException"},
	apierr.InUse:         {400, "ConcurrentUpdateException"},
	apierr.Throttled:     {400, "ThrottlingException"},
	apierr.Unauthorized:  {403, "AccessDeniedException"},
}

// Service returns the Application Auto Scaling JSON service.
func Service(r *autoscale.Registry, log *slog.Logger) *awsproto.JSONService {
	a := &adapter{r: r}
	return &awsproto.JSONService{
		Prefix: "AnyScaleFrontendService",
		Codes:  codes,
		Log:    log.With("component", "api.autoscaling"),
		Ops: map[string]awsproto.Op{
			"RegisterScalableTarget":    a.register,
			"DescribeScalableTargets":   a.describeTargets,
			"DeregisterScalableTarget":  a.deregister,
			"PutScalingPolicy":          a.putPolicy,
			"DescribeScalingPolicies":   a.describePolicies,
			"DeleteScalingPolicy":       a.deletePolicy,
			"DescribeScalingActivities": a.describeActivities,
		},
	}
}

type adapter struct{ r *autoscale.Registry }

type key struct {
	ServiceNamespace  string
	ResourceId        string
	ScalableDimension string
}

func (a *adapter) register(r *http.Request, body []byte) (any, error) {
	var in struct {
		catalog.ScalableTarget
		MinCapacity *int
		MaxCapacity *int
	}
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	t := in.ScalableTarget
	if in.MinCapacity != nil {
		t.MinCapacity = *in.MinCapacity
	}
	if in.MaxCapacity != nil {
		t.MaxCapacity = *in.MaxCapacity
	}
	out, err := a.r.RegisterScalableTarget(r.Context(), t, in.MinCapacity != nil, in.MaxCapacity != nil)
	if err != nil {
		return nil, err
	}
	return map[string]string{"ScalableTargetARN": out.ScalableTargetARN}, nil
}

func (a *adapter) describeTargets(r *http.Request, body []byte) (any, error) {
	var in struct {
		ServiceNamespace  string
		ResourceIds       []string
		ScalableDimension string
	}
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	ts, err := a.r.DescribeScalableTargets(r.Context(), in.ServiceNamespace, in.ResourceIds, in.ScalableDimension)
	if err != nil {
		return nil, err
	}
	if ts == nil {
		ts = []*catalog.ScalableTarget{}
	}
	return map[string]any{"ScalableTargets": ts}, nil
}

func (a *adapter) deregister(r *http.Request, body []byte) (any, error) {
	var in key
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	return nil, a.r.DeregisterScalableTarget(r.Context(), in.ServiceNamespace, in.ResourceId, in.ScalableDimension)
}

func (a *adapter) putPolicy(r *http.Request, body []byte) (any, error) {
	var in catalog.ScalingPolicy
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	p, err := a.r.PutScalingPolicy(r.Context(), in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"PolicyARN": p.PolicyARN, "Alarms": []any{}}, nil
}

func (a *adapter) describePolicies(r *http.Request, body []byte) (any, error) {
	var in struct {
		PolicyNames       []string
		ServiceNamespace  string
		ResourceId        string
		ScalableDimension string
	}
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	ps, err := a.r.DescribeScalingPolicies(r.Context(), in.ServiceNamespace, in.PolicyNames, in.ResourceId, in.ScalableDimension)
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []*catalog.ScalingPolicy{}
	}
	return map[string]any{"ScalingPolicies": ps}, nil
}

func (a *adapter) deletePolicy(r *http.Request, body []byte) (any, error) {
	var in struct {
		key
		PolicyName string
	}
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	return nil, a.r.DeleteScalingPolicy(r.Context(), in.ServiceNamespace, in.PolicyName, in.ResourceId, in.ScalableDimension)
}

func (a *adapter) describeActivities(r *http.Request, body []byte) (any, error) {
	var in key
	if err := awsproto.Decode(body, &in); err != nil {
		return nil, err
	}
	acts, err := a.r.DescribeScalingActivities(r.Context(), in.ServiceNamespace, in.ResourceId)
	if err != nil {
		return nil, err
	}
	if acts == nil {
		acts = []autoscale.Activity{}
	}
	return map[string]any{"ScalingActivities": acts}, nil
}
