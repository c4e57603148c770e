package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
)

const (
	nsSageMaker = aastypes.ServiceNamespaceSagemaker
	dimVariant  = aastypes.ScalableDimensionSageMakerVariantDesiredInstanceCount
)

func registerTarget(t testing.TB, c clients, resourceID string, minCap, maxCap int32) {
	t.Helper()
	if _, err := c.aas.RegisterScalableTarget(context.Background(), &applicationautoscaling.RegisterScalableTargetInput{
		ServiceNamespace: nsSageMaker, ResourceId: aws.String(resourceID), ScalableDimension: dimVariant,
		MinCapacity: aws.Int32(minCap), MaxCapacity: aws.Int32(maxCap),
	}); err != nil {
		t.Fatalf("RegisterScalableTarget: %v", err)
	}
}

func putPolicy(t testing.TB, c clients, resourceID, name string, cfg *aastypes.TargetTrackingScalingPolicyConfiguration) {
	t.Helper()
	if _, err := c.aas.PutScalingPolicy(context.Background(), &applicationautoscaling.PutScalingPolicyInput{
		PolicyName: aws.String(name), ServiceNamespace: nsSageMaker, ResourceId: aws.String(resourceID), ScalableDimension: dimVariant,
		PolicyType:                               aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: cfg,
	}); err != nil {
		t.Fatalf("PutScalingPolicy: %v", err)
	}
}

// scaleTimeline runs a bounded load step against an endpoint with a
// policy attached and checks the instance count rises above 1, then
// returns to 1 once the load stops.
func scaleTimeline(t *testing.T, c clients, endpoint string) {
	t.Helper()
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	row := sample[:strings.IndexByte(string(sample), '\n')+1]
	stop := make(chan struct{})
	wait := runLoad(c, endpoint, row, 3, stop, nil)
	peak := int32(1)
	waitFor(t, 45*time.Second, "the variant scales out under load", func() (bool, string) {
		d := describe(t, c, endpoint)
		n := aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount)
		peak = max(peak, n)
		return n > 1, fmt.Sprintf("%s, %d instances", d.EndpointStatus, n)
	})
	close(stop)
	res := wait()
	if len(res.failures) > 0 {
		t.Errorf("%d requests failed during the load step; first: %v", len(res.failures), res.failures[0])
	}
	waitFor(t, 60*time.Second, "the variant scales back in to 1", func() (bool, string) {
		d := describe(t, c, endpoint)
		n := aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount)
		peak = max(peak, n)
		return n == 1 && aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount) == 1 && d.EndpointStatus == "InService", fmt.Sprintf("%s, %d instances", d.EndpointStatus, n)
	})
	t.Logf("%d invocations, peak %d instances", res.ok, peak)
	if peak > 4 {
		t.Errorf("scaled to %d instances, above MaxCapacity 4", peak)
	}
	acts, err := c.aas.DescribeScalingActivities(context.Background(), &applicationautoscaling.DescribeScalingActivitiesInput{
		ServiceNamespace: nsSageMaker, ResourceId: aws.String("endpoint/" + endpoint + "/variant/AllTraffic"), ScalableDimension: dimVariant,
	})
	if err != nil {
		t.Fatalf("DescribeScalingActivities: %v", err)
	}
	var out, in int
	for _, a := range acts.ScalingActivities {
		// AWS words the cause after the alarm: ...-AlarmHigh-... scales
		// out, ...-AlarmLow-... scales in.
		desc, cause := aws.ToString(a.Description), aws.ToString(a.Cause)
		switch {
		case strings.Contains(cause, "AlarmHigh"):
			out++
		case strings.Contains(cause, "AlarmLow"):
			in++
		}
		if a.StatusCode != aastypes.ScalingActivityStatusCodeSuccessful {
			t.Errorf("activity %q: %s %s", desc, a.StatusCode, aws.ToString(a.StatusMessage))
		}
	}
	if out == 0 || in == 0 {
		for _, a := range acts.ScalingActivities {
			t.Logf("activity: %s | %s", aws.ToString(a.Description), aws.ToString(a.Cause))
		}
		t.Errorf("activities: %d scale-out, %d scale-in; want both", out, in)
	}
}

func TestAutoscalingPredefinedMetric(t *testing.T) {
	t.Parallel()
	c, _, _ := start(t, nil)
	ctx := context.Background()
	deploy(t, c, "scaled", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"), "ml.m5.large", 1)
	rid := "endpoint/scaled/variant/AllTraffic"
	registerTarget(t, c, rid, 1, 4)
	putPolicy(t, c, rid, "invocations", &aastypes.TargetTrackingScalingPolicyConfiguration{
		TargetValue: aws.Float64(600), // invocations per instance per minute: 10/s
		PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{
			PredefinedMetricType: aastypes.MetricTypeSageMakerVariantInvocationsPerInstance,
		},
		ScaleOutCooldown: aws.Int32(1),
		ScaleInCooldown:  aws.Int32(1),
	})

	ts, err := c.aas.DescribeScalableTargets(ctx, &applicationautoscaling.DescribeScalableTargetsInput{ServiceNamespace: nsSageMaker, ResourceIds: []string{rid}})
	if err != nil || len(ts.ScalableTargets) != 1 || aws.ToInt32(ts.ScalableTargets[0].MinCapacity) != 1 || aws.ToInt32(ts.ScalableTargets[0].MaxCapacity) != 4 {
		t.Fatalf("DescribeScalableTargets: %v %+v", err, ts)
	}
	ps, err := c.aas.DescribeScalingPolicies(ctx, &applicationautoscaling.DescribeScalingPoliciesInput{ServiceNamespace: nsSageMaker, ResourceId: aws.String(rid)})
	if err != nil || len(ps.ScalingPolicies) != 1 || aws.ToString(ps.ScalingPolicies[0].PolicyName) != "invocations" ||
		ps.ScalingPolicies[0].TargetTrackingScalingPolicyConfiguration == nil ||
		aws.ToFloat64(ps.ScalingPolicies[0].TargetTrackingScalingPolicyConfiguration.TargetValue) != 600 {
		t.Fatalf("DescribeScalingPolicies: %v %+v", err, ps)
	}

	scaleTimeline(t, c, "scaled")

	// Validation errors.
	_, err = c.aas.PutScalingPolicy(ctx, &applicationautoscaling.PutScalingPolicyInput{
		PolicyName: aws.String("bad"), ServiceNamespace: nsSageMaker, ResourceId: aws.String(rid), ScalableDimension: dimVariant,
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(1),
			CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{
				MetricName: aws.String("NoSuchMetric"), Namespace: aws.String("AWS/SageMaker"), Statistic: aastypes.MetricStatisticAverage,
			},
		},
	})
	expectAPIError(t, "unknown metric", err, "ValidationException", 400, "NoSuchMetric")
	_, err = c.aas.RegisterScalableTarget(ctx, &applicationautoscaling.RegisterScalableTargetInput{
		ServiceNamespace: nsSageMaker, ResourceId: aws.String("endpoint/nope/variant/AllTraffic"), ScalableDimension: dimVariant,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2),
	})
	expectAPIError(t, "unknown endpoint", err, "ValidationException", 400)

	// Delete the policy, deregister the target.
	if _, err := c.aas.DeleteScalingPolicy(ctx, &applicationautoscaling.DeleteScalingPolicyInput{
		PolicyName: aws.String("invocations"), ServiceNamespace: nsSageMaker, ResourceId: aws.String(rid), ScalableDimension: dimVariant,
	}); err != nil {
		t.Fatalf("DeleteScalingPolicy: %v", err)
	}
	ps, err = c.aas.DescribeScalingPolicies(ctx, &applicationautoscaling.DescribeScalingPoliciesInput{ServiceNamespace: nsSageMaker, ResourceId: aws.String(rid)})
	if err != nil || len(ps.ScalingPolicies) != 0 {
		t.Errorf("policies after delete: %v %+v", err, ps)
	}
	_, err = c.aas.DeleteScalingPolicy(ctx, &applicationautoscaling.DeleteScalingPolicyInput{
		PolicyName: aws.String("invocations"), ServiceNamespace: nsSageMaker, ResourceId: aws.String(rid), ScalableDimension: dimVariant,
	})
	if code, _, _ := apiError(t, err); code != "ObjectNotFoundException" {
		t.Errorf("deleting a deleted policy: %v", err)
	}
	if _, err := c.aas.DeregisterScalableTarget(ctx, &applicationautoscaling.DeregisterScalableTargetInput{
		ServiceNamespace: nsSageMaker, ResourceId: aws.String(rid), ScalableDimension: dimVariant,
	}); err != nil {
		t.Fatalf("DeregisterScalableTarget: %v", err)
	}
	ts, err = c.aas.DescribeScalableTargets(ctx, &applicationautoscaling.DescribeScalableTargetsInput{ServiceNamespace: nsSageMaker})
	if err != nil || len(ts.ScalableTargets) != 0 {
		t.Errorf("targets after deregister: %v %+v", err, ts)
	}
}

func TestAutoscalingCustomizedMetric(t *testing.T) {
	t.Parallel()
	c, _, _ := start(t, nil)
	deploy(t, c, "custom", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"), "ml.m5.large", 1)
	rid := "endpoint/custom/variant/AllTraffic"
	registerTarget(t, c, rid, 1, 4)
	putPolicy(t, c, rid, "custom-invocations", &aastypes.TargetTrackingScalingPolicyConfiguration{
		TargetValue: aws.Float64(600),
		CustomizedMetricSpecification: &aastypes.CustomizedMetricSpecification{
			MetricName: aws.String("InvocationsPerInstance"),
			Namespace:  aws.String("AWS/SageMaker"),
			Statistic:  aastypes.MetricStatisticSum,
			Dimensions: []aastypes.MetricDimension{
				{Name: aws.String("EndpointName"), Value: aws.String("custom")},
				{Name: aws.String("VariantName"), Value: aws.String("AllTraffic")},
			},
		},
		ScaleOutCooldown: aws.Int32(1),
		ScaleInCooldown:  aws.Int32(1),
	})
	scaleTimeline(t, c, "custom")
}
