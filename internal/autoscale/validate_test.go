package autoscale

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/catalog"
)

func TestValidatePolicy(t *testing.T) {
	ok := invocationsPolicy("p", 70)
	with := func(f func(p *catalog.ScalingPolicy)) catalog.ScalingPolicy {
		var p catalog.ScalingPolicy
		b, _ := json.Marshal(ok)
		if err := json.Unmarshal(b, &p); err != nil { // deep copy
			t.Fatal(err)
		}
		f(&p)
		return p
	}
	cfg := func(f func(c *catalog.TargetTrackingConfig)) catalog.ScalingPolicy {
		return with(func(p *catalog.ScalingPolicy) { f(p.TargetTrackingScalingPolicyConfiguration) })
	}
	tests := []struct {
		name    string
		policy  catalog.ScalingPolicy
		wantErr string // "" for valid
	}{
		{"predefined invocations", ok, ""},
		{"predefined high-resolution concurrency", policy("p", 5, PredefinedConcurrentRequestsHighRes, nil), ""},
		{"custom ModelLatency", customPolicy("p", "ModelLatency", "Average", 1e5), ""},
		{"custom backlog", customPolicy("p", "ApproximateBacklogSizePerInstance", "Average", 5), ""},
		{"unsupported custom metric", customPolicy("p", "CPUUtilization", "Average", 50), `MetricName "CPUUtilization" is not supported`},
		{"unsupported statistic", customPolicy("p", "ModelLatency", "p99", 50), `Statistic "p99" is not supported for MetricName ModelLatency`},
		{"other namespace", with(func(p *catalog.ScalingPolicy) {
			p.TargetTrackingScalingPolicyConfiguration = &catalog.TargetTrackingConfig{TargetValue: 50,
				CustomizedMetricSpecification: &catalog.CustomizedMetricSpecification{
					MetricName: "CPUUtilization", Namespace: "/aws/sagemaker/Endpoints", Statistic: "Average"}}
		}), `Namespace "/aws/sagemaker/Endpoints" is not supported`},
		{"unsupported predefined", policy("p", 5, "SageMakerVariantProvisionedConcurrencyUtilization", nil),
			`PredefinedMetricType "SageMakerVariantProvisionedConcurrencyUtilization" is not supported`},
		{"no metric", cfg(func(c *catalog.TargetTrackingConfig) { c.PredefinedMetricSpecification = nil }), "is required"},
		{"two metrics", cfg(func(c *catalog.TargetTrackingConfig) {
			c.CustomizedMetricSpecification = &catalog.CustomizedMetricSpecification{MetricName: "Invocations", Namespace: MetricNamespace, Statistic: "Sum"}
		}), "not both"},
		{"zero target", cfg(func(c *catalog.TargetTrackingConfig) { c.TargetValue = 0 }), "TargetValue 0"},
		{"negative cooldown", cfg(func(c *catalog.TargetTrackingConfig) { c.ScaleInCooldown = seconds(-1) }), "ScaleInCooldown -1"},
		{"step scaling", with(func(p *catalog.ScalingPolicy) { p.PolicyType = "StepScaling" }), `PolicyType "StepScaling" is not supported`},
		{"no configuration", with(func(p *catalog.ScalingPolicy) { p.TargetTrackingScalingPolicyConfiguration = nil }), "TargetTrackingScalingPolicyConfiguration is required"},
		{"other namespace of service", with(func(p *catalog.ScalingPolicy) { p.ServiceNamespace = "ecs" }), `ServiceNamespace "ecs"`},
		{"other dimension", with(func(p *catalog.ScalingPolicy) {
			p.ScalableDimension = "sagemaker:variant:DesiredProvisionedConcurrency"
		}), "ScalableDimension"},
		{"bad resource id", with(func(p *catalog.ScalingPolicy) { p.ResourceId = "endpoint/ep" }), `ResourceId "endpoint/ep"`},
		{"no name", with(func(p *catalog.ScalingPolicy) { p.PolicyName = "" }), "PolicyName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePolicy(tc.policy)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidatePolicy: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ValidatePolicy error = %v, want ErrInvalid containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateTarget(t *testing.T) {
	tests := []struct {
		name    string
		target  catalog.ScalableTarget
		wantErr string
	}{
		{"ok", target(1, 4), ""},
		{"min zero for async", target(0, 4), ""},
		{"max below min", target(3, 2), "MaxCapacity 2 must be at least MinCapacity 3"},
		{"negative min", target(-1, 2), "MinCapacity -1"},
		{"bad suspended state", func() catalog.ScalableTarget {
			tg := target(1, 2)
			tg.SuspendedState = json.RawMessage(`[1]`)
			return tg
		}(), "SuspendedState"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateTarget(tc.target)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateTarget: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ValidateTarget error = %v, want ErrInvalid containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseResourceID(t *testing.T) {
	ep, v, err := ParseResourceID("endpoint/my-ep/variant/AllTraffic")
	if err != nil || ep != "my-ep" || v != "AllTraffic" {
		t.Fatalf("ParseResourceID = %q, %q, %v", ep, v, err)
	}
	if ResourceID(ep, v) != "endpoint/my-ep/variant/AllTraffic" {
		t.Fatalf("ResourceID round trip = %q", ResourceID(ep, v))
	}
	for _, bad := range []string{"", "endpoint/a/variant/", "endpoint/a/b/c", "endpoint/-a/variant/v", "endpoint/a/variant/v/x"} {
		if _, _, err := ParseResourceID(bad); err == nil {
			t.Errorf("ParseResourceID(%q) accepted", bad)
		}
	}
}

func TestTimingValidate(t *testing.T) {
	if err := (Timing{}).Validate(); err != nil {
		t.Fatalf("zero Timing (defaults): %v", err)
	}
	if err := (Timing{Period: 10e9, Tick: 20e9}).Validate(); err == nil || !strings.Contains(err.Error(), "Tick") {
		t.Fatalf("Tick longer than the period: err = %v", err)
	}
	if err := (Timing{ScaleInThreshold: 1.5}).Validate(); err == nil || !strings.Contains(err.Error(), "ScaleInThreshold") {
		t.Fatalf("ScaleInThreshold 1.5: err = %v", err)
	}
}
