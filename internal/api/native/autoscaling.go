package native

import (
	"net/http"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/catalog"
)

func (a *API) autoscalingRoutes() {
	const base = "endpoints/{name}/variants/{variant}/autoscaling"
	a.handle("GET "+Prefix+base, a.getAutoscaling)
	a.handle("PUT "+Prefix+base, a.putAutoscaling)
	a.handle("DELETE "+Prefix+base, a.deleteAutoscaling)
	a.handle("GET "+Prefix+base+"/activities", a.activities)
}

func resourceID(r *http.Request) string {
	return ResourceID(r.PathValue("name"), r.PathValue("variant"))
}

func (a *API) getAutoscaling(r *http.Request) (int, any, error) {
	out, err := a.describe(r, resourceID(r))
	return http.StatusOK, out, err
}

// describe returns the variant's target and policies; NotFound if the
// variant has no scalable target.
func (a *API) describe(r *http.Request, id string) (*Autoscaling, error) {
	ts, err := a.as.DescribeScalableTargets(r.Context(), autoscale.ServiceNamespace, []string{id}, autoscale.ScalableDimension)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, apierr.New(apierr.NotFound, "No scalable target registered for service namespace: %s, resource ID: %s, scalable dimension: %s", autoscale.ServiceNamespace, id, autoscale.ScalableDimension)
	}
	ps, err := a.as.DescribeScalingPolicies(r.Context(), autoscale.ServiceNamespace, nil, id, autoscale.ScalableDimension)
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []*catalog.ScalingPolicy{}
	}
	return &Autoscaling{ScalableTarget: ts[0], ScalingPolicies: ps}, nil
}

func (a *API) putAutoscaling(r *http.Request) (int, any, error) {
	var in PutAutoscalingInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	id := resourceID(r)
	t := catalog.ScalableTarget{ServiceNamespace: autoscale.ServiceNamespace, ResourceId: id, ScalableDimension: autoscale.ScalableDimension}
	if in.MinCapacity != nil {
		t.MinCapacity = *in.MinCapacity
	}
	if in.MaxCapacity != nil {
		t.MaxCapacity = *in.MaxCapacity
	}
	if _, err := a.as.RegisterScalableTarget(r.Context(), t, in.MinCapacity != nil, in.MaxCapacity != nil); err != nil {
		return 0, nil, err
	}
	if in.TargetTrackingScalingPolicyConfiguration != nil {
		name := in.PolicyName
		if name == "" {
			name = DefaultPolicyName
		}
		if _, err := a.as.PutScalingPolicy(r.Context(), catalog.ScalingPolicy{
			PolicyName: name, ServiceNamespace: autoscale.ServiceNamespace, ResourceId: id,
			ScalableDimension: autoscale.ScalableDimension, PolicyType: autoscale.PolicyTypeTargetTrack,
			TargetTrackingScalingPolicyConfiguration: in.TargetTrackingScalingPolicyConfiguration,
		}); err != nil {
			return 0, nil, err
		}
	}
	out, err := a.describe(r, id)
	return http.StatusOK, out, err
}

func (a *API) deleteAutoscaling(r *http.Request) (int, any, error) {
	return http.StatusNoContent, nil, a.as.DeregisterScalableTarget(r.Context(), autoscale.ServiceNamespace, resourceID(r), autoscale.ScalableDimension)
}

func (a *API) activities(r *http.Request) (int, any, error) {
	acts, err := a.as.DescribeScalingActivities(r.Context(), autoscale.ServiceNamespace, resourceID(r))
	if err != nil {
		return 0, nil, err
	}
	if acts == nil {
		acts = []autoscale.Activity{}
	}
	return http.StatusOK, ActivityList{ScalingActivities: acts}, nil
}
