package cli

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/catalog"
)

func autoscalingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "autoscaling", Short: "Target-tracking autoscaling for endpoint variants"}
	cmd.AddCommand(autoscalingSetCmd(g), autoscalingDescribeCmd(g), autoscalingActivitiesCmd(g), autoscalingDeleteCmd(g))
	return cmd
}

func variantFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "variant", "AllTraffic", "endpoint variant")
}

func autoscalingSetCmd(g *globals) *cobra.Command {
	var (
		variant, metric, statistic, policy string
		minCap, maxCap                     int
		target                             float64
		scaleIn, scaleOut                  int
		disableScaleIn                     bool
	)
	cmd := &cobra.Command{
		Use:   "set ENDPOINT [--variant V] --min N --max N [--target T] [--metric M] [--scale-in-cooldown S] [--scale-out-cooldown S]",
		Short: "Register a variant's instance count range and a target-tracking policy",
		Long: `Register a variant's instance count range and, with --target, a target-tracking
policy on a metric: SageMakerVariantInvocationsPerInstance (the default) or
SageMakerVariantConcurrentRequestsPerModelHighResolution, or one of the AWS/SageMaker
metrics InvocationsPerInstance, Invocations, ModelLatency, ConcurrentRequestsPerModel,
ApproximateBacklogSizePerInstance with --statistic.`,
		Args: exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			endpoint := args[0]
			in := native.PutAutoscalingInput{PolicyName: policy}
			if cmd.Flags().Changed("min") {
				in.MinCapacity = &minCap
			}
			if cmd.Flags().Changed("max") {
				in.MaxCapacity = &maxCap
			}
			if cmd.Flags().Changed("target") {
				tt := &catalog.TargetTrackingConfig{TargetValue: target, DisableScaleIn: disableScaleIn}
				if cmd.Flags().Changed("scale-in-cooldown") {
					tt.ScaleInCooldown = &scaleIn
				}
				if cmd.Flags().Changed("scale-out-cooldown") {
					tt.ScaleOutCooldown = &scaleOut
				}
				switch metric {
				case autoscale.PredefinedInvocationsPerInstance, autoscale.PredefinedConcurrentRequestsHighRes:
					tt.PredefinedMetricSpecification = &catalog.PredefinedMetricSpecification{PredefinedMetricType: metric}
				default:
					stat := statistic
					if stat == "" {
						stat = "Average"
						if strings.HasPrefix(metric, "Invocations") {
							stat = "Sum"
						}
					}
					tt.CustomizedMetricSpecification = &catalog.CustomizedMetricSpecification{
						MetricName: metric, Namespace: autoscale.MetricNamespace, Statistic: stat,
						Dimensions: []catalog.MetricDimension{{Name: "EndpointName", Value: endpoint}, {Name: "VariantName", Value: variant}},
					}
				}
				in.TargetTrackingScalingPolicyConfiguration = tt
			}
			var out native.Autoscaling
			if ok, err := g.fetch(cmd, http.MethodPut, native.AutoscalingPath(endpoint, variant), in, &out); !ok {
				return err
			}
			return printAutoscaling(cmd.OutOrStdout(), &out)
		},
	}
	variantFlag(cmd, &variant)
	f := cmd.Flags()
	f.IntVar(&minCap, "min", 1, "minimum instance count")
	f.IntVar(&maxCap, "max", 1, "maximum instance count")
	f.Float64Var(&target, "target", 0, "target value of the metric")
	f.StringVar(&metric, "metric", autoscale.PredefinedInvocationsPerInstance, "metric to track")
	f.StringVar(&statistic, "statistic", "", "statistic of a customized metric (Sum, Average, Maximum)")
	f.StringVar(&policy, "policy-name", native.DefaultPolicyName, "scaling policy name")
	f.IntVar(&scaleIn, "scale-in-cooldown", 300, "seconds after a scale-in before the next")
	f.IntVar(&scaleOut, "scale-out-cooldown", 300, "seconds after a scale-out before the next")
	f.BoolVar(&disableScaleIn, "disable-scale-in", false, "never scale in")
	return cmd
}

func printAutoscaling(w io.Writer, a *native.Autoscaling) error {
	if t := a.ScalableTarget; t != nil {
		if err := fields(w, "Resource", t.ResourceId, "Dimension", t.ScalableDimension,
			"Min capacity", strconv.Itoa(t.MinCapacity), "Max capacity", strconv.Itoa(t.MaxCapacity)); err != nil {
			return err
		}
	}
	if len(a.ScalingPolicies) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := newTable(w, "POLICY", "METRIC", "TARGET", "SCALE-OUT COOLDOWN", "SCALE-IN COOLDOWN", "SCALE-IN")
	for _, p := range a.ScalingPolicies {
		tt := p.TargetTrackingScalingPolicyConfiguration
		if tt == nil {
			t.row(p.PolicyName, p.PolicyType, "-", "-", "-", "-")
			continue
		}
		metric := "-"
		if m := tt.PredefinedMetricSpecification; m != nil {
			metric = m.PredefinedMetricType
		} else if m := tt.CustomizedMetricSpecification; m != nil {
			metric = m.MetricName + "/" + m.Statistic
		}
		cool := func(p *int) string {
			if p == nil {
				return "default"
			}
			return strconv.Itoa(*p) + "s"
		}
		scaleIn := "enabled"
		if tt.DisableScaleIn {
			scaleIn = "disabled"
		}
		t.row(p.PolicyName, metric, num(tt.TargetValue), cool(tt.ScaleOutCooldown), cool(tt.ScaleInCooldown), scaleIn)
	}
	return t.flush()
}

func autoscalingDescribeCmd(g *globals) *cobra.Command {
	var variant string
	cmd := &cobra.Command{
		Use:   "describe ENDPOINT [--variant V]",
		Short: "Show a variant's instance count range and scaling policies",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out native.Autoscaling
			if ok, err := g.fetch(cmd, http.MethodGet, native.AutoscalingPath(args[0], variant), nil, &out); !ok {
				return err
			}
			return printAutoscaling(cmd.OutOrStdout(), &out)
		},
	}
	variantFlag(cmd, &variant)
	return cmd
}

func autoscalingActivitiesCmd(g *globals) *cobra.Command {
	var variant string
	cmd := &cobra.Command{
		Use:   "activities ENDPOINT [--variant V]",
		Short: "List a variant's recent scaling activities, newest first",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out native.ActivityList
			if ok, err := g.fetch(cmd, http.MethodGet, native.AutoscalingPath(args[0], variant)+"/activities", nil, &out); !ok {
				return err
			}
			now := time.Now()
			t := newTable(cmd.OutOrStdout(), "STATUS", "DESCRIPTION", "CAUSE", "STARTED")
			for _, a := range out.ScalingActivities {
				t.row(a.StatusCode, a.Description, a.Cause, ago(a.StartTime, now))
			}
			return t.flush()
		},
	}
	variantFlag(cmd, &variant)
	return cmd
}

func autoscalingDeleteCmd(g *globals) *cobra.Command {
	var variant string
	cmd := &cobra.Command{
		Use:   "delete ENDPOINT [--variant V]",
		Short: "Deregister a variant's scalable target and its policies",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ok, err := g.fetch(cmd, http.MethodDelete, native.AutoscalingPath(args[0], variant), nil, nil); !ok {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted autoscaling of endpoint %s variant %s\n", args[0], variant)
			return nil
		},
	}
	variantFlag(cmd, &variant)
	return cmd
}
