package native

import (
	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/hosting"
)

// Request and response bodies that are not a catalog record as it is.
// Member names are SageMaker's and Application Auto Scaling's.

// ModelList is GET /api/v1/models.
type ModelList struct {
	Models []*catalog.Model `json:"Models"`
}

// EndpointConfigList is GET /api/v1/endpoint-configs.
type EndpointConfigList struct {
	EndpointConfigs []*catalog.EndpointConfig `json:"EndpointConfigs"`
}

// EndpointList is GET /api/v1/endpoints: each endpoint as DescribeEndpoint
// shows it, with current and desired instance counts.
type EndpointList struct {
	Endpoints []*hosting.EndpointDescription `json:"Endpoints"`
}

// CreateEndpointInput is POST /api/v1/endpoints.
type CreateEndpointInput struct {
	EndpointName       string        `json:"EndpointName"`
	EndpointConfigName string        `json:"EndpointConfigName"`
	Tags               []catalog.Tag `json:"Tags,omitempty"`
}

// UpdateEndpointInput is PUT /api/v1/endpoints/{name}: deploy another
// endpoint config (blue/green).
type UpdateEndpointInput struct {
	EndpointConfigName               string            `json:"EndpointConfigName"`
	RetainAllVariantProperties       bool              `json:"RetainAllVariantProperties,omitempty"`
	ExcludeRetainedVariantProperties []VariantProperty `json:"ExcludeRetainedVariantProperties,omitempty"`
}

// VariantProperty names a property UpdateEndpoint should not retain.
type VariantProperty struct {
	VariantPropertyType string `json:"VariantPropertyType"`
}

// CapacityInput is POST /api/v1/endpoints/{name}/capacity.
type CapacityInput struct {
	DesiredWeightsAndCapacities []hosting.DesiredWeightAndCapacity `json:"DesiredWeightsAndCapacities"`
}

// Autoscaling is a variant's autoscaling resource: its scalable target and
// the policies on it.
type Autoscaling struct {
	ScalableTarget  *catalog.ScalableTarget  `json:"ScalableTarget"`
	ScalingPolicies []*catalog.ScalingPolicy `json:"ScalingPolicies"`
}

// DefaultPolicyName is the policy PUT .../autoscaling writes when the body
// names none.
const DefaultPolicyName = "SageMakerEndpointInvocationScalingPolicy"

// PutAutoscalingInput is PUT .../variants/{variant}/autoscaling: register
// (or update) the variant's scalable target and, if a configuration is
// given, put a target-tracking policy on it.
type PutAutoscalingInput struct {
	MinCapacity                              *int                          `json:"MinCapacity,omitempty"`
	MaxCapacity                              *int                          `json:"MaxCapacity,omitempty"`
	PolicyName                               string                        `json:"PolicyName,omitempty"`
	TargetTrackingScalingPolicyConfiguration *catalog.TargetTrackingConfig `json:"TargetTrackingScalingPolicyConfiguration,omitempty"`
}

// ActivityList is GET .../autoscaling/activities, newest first.
type ActivityList struct {
	ScalingActivities []autoscale.Activity `json:"ScalingActivities"`
}

// ResourceID is Application Auto Scaling's id for an endpoint variant.
func ResourceID(endpoint, variant string) string {
	return "endpoint/" + endpoint + "/variant/" + variant
}
