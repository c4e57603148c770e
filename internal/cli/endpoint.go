package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/hosting"
)

func endpointCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint", Short: "Create, list, describe, update, scale and delete endpoints"}
	cmd.AddCommand(endpointCreateCmd(g), endpointListCmd(g), endpointDescribeCmd(g), endpointUpdateCmd(g),
		endpointScaleCmd(g), endpointDeleteCmd(g))
	return cmd
}

func endpointCreateCmd(g *globals) *cobra.Command {
	var (
		config string
		wait   bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --config CONFIG [--wait]",
		Short: "Deploy an endpoint config as an endpoint",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required(cmd, "config"); err != nil {
				return err
			}
			return g.createEndpoint(cmd, args[0], config, wait)
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "endpoint config to deploy")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the endpoint is InService (or Failed)")
	return cmd
}

// createEndpoint creates an endpoint and, with wait, waits for it and
// prints its description.
func (g *globals) createEndpoint(cmd *cobra.Command, name, config string, wait bool) error {
	in := native.CreateEndpointInput{EndpointName: name, EndpointConfigName: config}
	return g.change(cmd, http.MethodPost, native.EndpointPath(""), in, name, "create", "Creating", wait)
}

// change sends a request that starts an endpoint operation. Without wait
// it prints the answer; with wait it waits for the endpoint to be
// InService and prints that (with --json, only the final description).
func (g *globals) change(cmd *cobra.Command, method, path string, in any, name, verb, doing string, wait bool) error {
	if !wait {
		var d hosting.EndpointDescription
		if ok, err := g.fetch(cmd, method, path, in, &d); !ok {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s endpoint %s (%s)\n", doing, d.EndpointName, d.EndpointStatus)
		return nil
	}
	if _, err := g.client().Raw(cmd.Context(), method, path, in); err != nil {
		return err
	}
	if err := g.waitInService(cmd, name, verb); err != nil {
		return err
	}
	if !g.json {
		fmt.Fprintf(cmd.OutOrStdout(), "Endpoint %s is InService\n", name)
	}
	return nil
}

// waitInService polls an endpoint until it is InService or Failed. A
// Failed endpoint, or an update that left a FailureReason, is an error.
func (g *globals) waitInService(cmd *cobra.Command, name, verb string) error {
	ctx := cmd.Context()
	c := g.client()
	deadline := time.Now().Add(g.timeout)
	last := ""
	for {
		d, err := c.DescribeEndpoint(ctx, name)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("endpoint %s: %s%s", name, d.EndpointStatus, instancesProgress(d))
		if line != last {
			progress(cmd, "%s", line)
			last = line
		}
		switch d.EndpointStatus {
		case catalog.StatusInService:
			if d.FailureReason != "" {
				return fmt.Errorf("endpoint %s: %s failed: %s", name, verb, d.FailureReason)
			}
			if !g.json {
				return nil
			}
			b, err := c.Raw(ctx, http.MethodGet, native.EndpointPath(name), nil)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), b)
		case catalog.StatusFailed:
			return fmt.Errorf("endpoint %s failed: %s", name, d.FailureReason)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("endpoint %s: still %s after %s", name, d.EndpointStatus, g.timeout)
		}
		if err := sleep(ctx, g.poll); err != nil {
			return err
		}
	}
}

// instancesProgress is " (current/desired instances)".
func instancesProgress(d *hosting.EndpointDescription) string {
	cur, want := 0, 0
	for _, v := range d.ProductionVariants {
		cur += v.CurrentInstanceCount
		want += v.DesiredInstanceCount
	}
	return fmt.Sprintf(" (%d/%d instances)", cur, want)
}

func endpointListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List endpoints",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out native.EndpointList
			if ok, err := g.fetch(cmd, http.MethodGet, native.EndpointPath(""), nil, &out); !ok {
				return err
			}
			now := time.Now()
			t := newTable(cmd.OutOrStdout(), "NAME", "STATUS", "VARIANTS", "INSTANCES", "CREATED")
			for _, d := range out.Endpoints {
				names := make([]string, 0, len(d.ProductionVariants))
				cur, want := 0, 0
				for _, v := range d.ProductionVariants {
					names = append(names, v.VariantName)
					cur += v.CurrentInstanceCount
					want += v.DesiredInstanceCount
				}
				t.row(d.EndpointName, d.EndpointStatus, orDash(strings.Join(names, ",")), fmt.Sprintf("%d/%d", cur, want), ago(d.CreationTime, now))
			}
			return t.flush()
		},
	}
}

func endpointDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show an endpoint and its variants' instances and weights",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d hosting.EndpointDescription
			if ok, err := g.fetch(cmd, http.MethodGet, native.EndpointPath(args[0]), nil, &d); !ok {
				return err
			}
			return printEndpoint(cmd.OutOrStdout(), &d, time.Now())
		},
	}
}

func printEndpoint(w io.Writer, d *hosting.EndpointDescription, now time.Time) error {
	if err := fields(w,
		"Name", d.EndpointName,
		"ARN", d.EndpointArn,
		"Status", d.EndpointStatus,
		"Failure reason", d.FailureReason,
		"Config", d.EndpointConfigName,
		"Created", stamp(d.CreationTime, now),
		"Modified", stamp(d.LastModifiedTime, now),
	); err != nil {
		return err
	}
	if len(d.ProductionVariants) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := newTable(w, "VARIANT", "CURRENT INSTANCES", "DESIRED INSTANCES", "CURRENT WEIGHT", "DESIRED WEIGHT", "IMAGE")
	for _, v := range d.ProductionVariants {
		img := "-"
		if len(v.DeployedImages) > 0 {
			img = v.DeployedImages[0].SpecifiedImage
		}
		t.row(v.VariantName, v.CurrentInstanceCount, v.DesiredInstanceCount, num(v.CurrentWeight), num(v.DesiredWeight), img)
	}
	return t.flush()
}

func endpointUpdateCmd(g *globals) *cobra.Command {
	var (
		config string
		retain bool
		wait   bool
	)
	cmd := &cobra.Command{
		Use:   "update NAME --config CONFIG [--retain-variant-properties] [--wait]",
		Short: "Deploy another endpoint config to an endpoint (blue/green)",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := required(cmd, "config"); err != nil {
				return err
			}
			in := native.UpdateEndpointInput{EndpointConfigName: config, RetainAllVariantProperties: retain}
			return g.change(cmd, http.MethodPut, native.EndpointPath(args[0]), in, args[0], "update", "Updating", wait)
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "endpoint config to deploy")
	cmd.Flags().BoolVar(&retain, "retain-variant-properties", false, "keep the variants' current instance counts and weights")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the update finishes")
	return cmd
}

func endpointScaleCmd(g *globals) *cobra.Command {
	var (
		variant string
		count   int
		weight  float64
		wait    bool
	)
	cmd := &cobra.Command{
		Use:   "scale NAME --variant V [--count N] [--weight W] [--wait]",
		Short: "Change a variant's instance count or weight in place",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d := hosting.DesiredWeightAndCapacity{VariantName: variant}
			if cmd.Flags().Changed("count") {
				d.DesiredInstanceCount = &count
			}
			if cmd.Flags().Changed("weight") {
				d.DesiredWeight = &weight
			}
			if d.DesiredInstanceCount == nil && d.DesiredWeight == nil {
				return &UsageError{Err: fmt.Errorf("give --count, --weight or both"), Usage: cmd.UseLine()}
			}
			in := native.CapacityInput{DesiredWeightsAndCapacities: []hosting.DesiredWeightAndCapacity{d}}
			return g.change(cmd, http.MethodPost, native.EndpointPath(args[0])+"/capacity", in, args[0], "scale", "Updating", wait)
		},
	}
	cmd.Flags().StringVar(&variant, "variant", "AllTraffic", "variant to change")
	cmd.Flags().IntVar(&count, "count", 0, "desired instance count")
	cmd.Flags().Float64Var(&weight, "weight", 0, "desired weight")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the variant has the new count")
	return cmd
}

func endpointDeleteCmd(g *globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--wait]",
		Short: "Delete an endpoint: drain and stop its instances",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ok, err := g.fetch(cmd, http.MethodDelete, native.EndpointPath(name), nil, nil)
			if !ok && err != nil {
				return err
			}
			if wait {
				if err := g.waitDeleted(cmd, name); err != nil {
					return err
				}
			}
			if ok {
				if wait {
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted endpoint %s\n", name)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "Deleting endpoint %s\n", name)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the endpoint is gone")
	return cmd
}

// waitDeleted polls the endpoint list until name is no longer in it (the
// hosting service reports a missing endpoint as a validation error, so the
// list, not a describe, is what says "gone").
func (g *globals) waitDeleted(cmd *cobra.Command, name string) error {
	ctx := cmd.Context()
	c := g.client()
	deadline := time.Now().Add(g.timeout)
	last := ""
	for {
		eps, err := c.ListEndpoints(ctx)
		if err != nil {
			return err
		}
		status := ""
		for _, d := range eps {
			if d.EndpointName == name {
				status = d.EndpointStatus
			}
		}
		if status == "" {
			progress(cmd, "endpoint %s: deleted", name)
			return nil
		}
		if line := "endpoint " + name + ": " + status; line != last {
			progress(cmd, "%s", line)
			last = line
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("endpoint %s: still %s after %s", name, status, g.timeout)
		}
		if err := sleep(ctx, g.poll); err != nil {
			return err
		}
	}
}
