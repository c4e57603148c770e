package autoscale

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/inferbox/inferbox/internal/catalog"
)

// Application Auto Scaling names this package supports.
const (
	ServiceNamespace      = "sagemaker"
	ScalableDimension     = "sagemaker:variant:DesiredInstanceCount"
	PolicyTypeTargetTrack = "TargetTrackingScaling"
	MetricNamespace       = "AWS/SageMaker"

	PredefinedInvocationsPerInstance    = "SageMakerVariantInvocationsPerInstance"
	PredefinedConcurrentRequestsHighRes = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
)

// ErrInvalid marks a scalable target or policy this package refuses. The
// error text names the field and the bad value; an API adapter returns it as
// a ValidationException.
var ErrInvalid = errors.New("invalid")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Name pattern shared by EndpointName and VariantName.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

// ParseResourceID splits "endpoint/<EndpointName>/variant/<VariantName>".
func ParseResourceID(id string) (endpoint, variant string, err error) {
	parts := strings.Split(id, "/")
	if len(parts) != 4 || parts[0] != "endpoint" || parts[2] != "variant" ||
		!namePattern.MatchString(parts[1]) || !namePattern.MatchString(parts[3]) {
		return "", "", invalidf("ResourceId %q is not of the form endpoint/<EndpointName>/variant/<VariantName>", id)
	}
	return parts[1], parts[3], nil
}

// ResourceID builds a variant's ResourceId.
func ResourceID(endpoint, variant string) string {
	return "endpoint/" + endpoint + "/variant/" + variant
}

func validateKey(ns, resourceID, dim string) error {
	if ns != ServiceNamespace {
		return invalidf("ServiceNamespace %q is not supported (supported: %s)", ns, ServiceNamespace)
	}
	if _, _, err := ParseResourceID(resourceID); err != nil {
		return err
	}
	if dim != ScalableDimension {
		return invalidf("ScalableDimension %q is not supported (supported: %s)", dim, ScalableDimension)
	}
	return nil
}

// ValidateTarget checks a ScalableTarget as RegisterScalableTarget would.
func ValidateTarget(t catalog.ScalableTarget) error {
	if err := validateKey(t.ServiceNamespace, t.ResourceId, t.ScalableDimension); err != nil {
		return err
	}
	if t.MinCapacity < 0 {
		return invalidf("MinCapacity %d must be at least 0", t.MinCapacity)
	}
	if t.MaxCapacity < t.MinCapacity {
		return invalidf("MaxCapacity %d must be at least MinCapacity %d", t.MaxCapacity, t.MinCapacity)
	}
	if _, err := parseSuspended(t); err != nil {
		return err
	}
	return nil
}

// ValidatePolicy checks a ScalingPolicy as PutScalingPolicy would, and
// refuses what this package cannot evaluate (step scaling, metrics the pool
// does not measure) with an error that names it.
func ValidatePolicy(p catalog.ScalingPolicy) error {
	if p.PolicyName == "" {
		return invalidf("PolicyName must not be empty")
	}
	if err := validateKey(p.ServiceNamespace, p.ResourceId, p.ScalableDimension); err != nil {
		return err
	}
	if p.PolicyType != PolicyTypeTargetTrack {
		return invalidf("PolicyType %q is not supported (supported: %s)", p.PolicyType, PolicyTypeTargetTrack)
	}
	c := p.TargetTrackingScalingPolicyConfiguration
	if c == nil {
		return invalidf("TargetTrackingScalingPolicyConfiguration is required for PolicyType %s", PolicyTypeTargetTrack)
	}
	if !(c.TargetValue > 0) || math.IsInf(c.TargetValue, 0) {
		return invalidf("TargetValue %v must be a positive number", c.TargetValue)
	}
	if c.ScaleOutCooldown != nil && *c.ScaleOutCooldown < 0 {
		return invalidf("ScaleOutCooldown %d must be at least 0", *c.ScaleOutCooldown)
	}
	if c.ScaleInCooldown != nil && *c.ScaleInCooldown < 0 {
		return invalidf("ScaleInCooldown %d must be at least 0", *c.ScaleInCooldown)
	}
	_, err := metricOf(c)
	return err
}

// suspended is ScalableTarget.SuspendedState.
type suspended struct {
	DynamicScalingInSuspended  bool `json:"DynamicScalingInSuspended"`
	DynamicScalingOutSuspended bool `json:"DynamicScalingOutSuspended"`
	ScheduledScalingSuspended  bool `json:"ScheduledScalingSuspended"`
}

func parseSuspended(t catalog.ScalableTarget) (suspended, error) {
	var s suspended
	if len(t.SuspendedState) == 0 || string(t.SuspendedState) == "null" {
		return s, nil
	}
	if err := json.Unmarshal(t.SuspendedState, &s); err != nil {
		return s, invalidf("SuspendedState is not valid: %v", err)
	}
	return s, nil
}
