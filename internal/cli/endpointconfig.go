package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
)

func endpointConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint-config", Short: "Create, list, describe and delete endpoint configs"}
	cmd.AddCommand(endpointConfigCreateCmd(g), endpointConfigListCmd(g), endpointConfigDescribeCmd(g), endpointConfigDeleteCmd(g))
	return cmd
}

// variantFlags define one production variant from flags.
type variantFlags struct {
	model        string
	instanceType string
	count        int
	variant      string
	weight       float64
	routing      string
}

func (v *variantFlags) register(cmd *cobra.Command, withModel bool) {
	f := cmd.Flags()
	if withModel {
		f.StringVar(&v.model, "model", "", "model the variant serves")
	}
	f.StringVar(&v.instanceType, "instance-type", "", "instance type, e.g. ml.m5.large")
	f.IntVar(&v.count, "count", 1, "initial instance count")
	f.StringVar(&v.variant, "variant", "AllTraffic", "variant name")
	f.Float64Var(&v.weight, "weight", 1, "initial variant weight")
	f.StringVar(&v.routing, "routing", "", "routing strategy: LEAST_OUTSTANDING_REQUESTS or RANDOM")
}

func (v *variantFlags) production() catalog.ProductionVariant {
	count, weight := v.count, v.weight
	pv := catalog.ProductionVariant{
		VariantName: v.variant, ModelName: v.model, InstanceType: v.instanceType,
		InitialInstanceCount: &count, InitialVariantWeight: &weight,
	}
	if v.routing != "" {
		pv.RoutingConfig = &catalog.RoutingConfig{RoutingStrategy: v.routing}
	}
	return pv
}

// parseVariantSpec reads name=AllTraffic,model=m,type=ml.m5.large,count=2,weight=1[,routing=RANDOM].
func parseVariantSpec(spec string) (catalog.ProductionVariant, error) {
	var pv catalog.ProductionVariant
	for _, part := range strings.Split(spec, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return pv, fmt.Errorf("--variant-spec %q: %q is not key=value", spec, part)
		}
		switch k {
		case "name", "variant":
			pv.VariantName = val
		case "model":
			pv.ModelName = val
		case "type", "instance-type":
			pv.InstanceType = val
		case "count":
			n, err := strconv.Atoi(val)
			if err != nil {
				return pv, fmt.Errorf("--variant-spec %q: count %q is not an integer", spec, val)
			}
			pv.InitialInstanceCount = &n
		case "weight":
			w, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return pv, fmt.Errorf("--variant-spec %q: weight %q is not a number", spec, val)
			}
			pv.InitialVariantWeight = &w
		case "routing":
			pv.RoutingConfig = &catalog.RoutingConfig{RoutingStrategy: val}
		default:
			return pv, fmt.Errorf("--variant-spec %q: unknown key %q (want name, model, type, count, weight, routing)", spec, k)
		}
	}
	if pv.VariantName == "" {
		pv.VariantName = "AllTraffic"
	}
	if pv.InitialInstanceCount == nil {
		one := 1
		pv.InitialInstanceCount = &one
	}
	return pv, nil
}

func endpointConfigCreateCmd(g *globals) *cobra.Command {
	var (
		vf    variantFlags
		specs []string
		file  string
	)
	cmd := &cobra.Command{
		Use:   "create NAME (--model M --instance-type T [--count N] [--variant V] [--weight W] [--routing R] | --variant-spec SPEC ... | --file CONFIG.json)",
		Short: "Create an endpoint config",
		Long: `Create an endpoint config with one variant from flags, several with repeated
--variant-spec name=AllTraffic,model=m,type=ml.m5.large,count=2,weight=1[,routing=RANDOM],
or any shape SageMaker's CreateEndpointConfig accepts from --file (JSON).`,
		Args: exactArgs(1, "an endpoint config name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ec := &catalog.EndpointConfig{EndpointConfigName: args[0]}
			switch {
			case file != "":
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, ec); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				ec.EndpointConfigName = args[0]
			case len(specs) > 0:
				for _, s := range specs {
					pv, err := parseVariantSpec(s)
					if err != nil {
						return &UsageError{Err: err, Usage: cmd.UseLine()}
					}
					ec.ProductionVariants = append(ec.ProductionVariants, pv)
				}
			default:
				if err := required(cmd, "model", "instance-type"); err != nil {
					return err
				}
				ec.ProductionVariants = []catalog.ProductionVariant{vf.production()}
			}
			var out catalog.EndpointConfig
			if ok, err := g.fetch(cmd, http.MethodPost, native.EndpointConfigPath(""), ec, &out); !ok {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created endpoint config %s (%s)\n", out.EndpointConfigName, out.EndpointConfigArn)
			return nil
		},
	}
	vf.register(cmd, true)
	cmd.Flags().StringArrayVar(&specs, "variant-spec", nil, "a variant as name=...,model=...,type=...,count=...,weight=... (repeatable)")
	cmd.Flags().StringVar(&file, "file", "", "JSON file in CreateEndpointConfig's shape")
	cmd.MarkFlagsMutuallyExclusive("variant-spec", "file")
	cmd.MarkFlagsMutuallyExclusive("model", "variant-spec")
	cmd.MarkFlagsMutuallyExclusive("model", "file")
	return cmd
}

func endpointConfigListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List endpoint configs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out native.EndpointConfigList
			if ok, err := g.fetch(cmd, http.MethodGet, native.EndpointConfigPath(""), nil, &out); !ok {
				return err
			}
			now := time.Now()
			t := newTable(cmd.OutOrStdout(), "NAME", "VARIANTS", "INSTANCES", "CREATED")
			for _, ec := range out.EndpointConfigs {
				names := make([]string, 0, len(ec.ProductionVariants))
				n := 0
				for _, v := range ec.ProductionVariants {
					names = append(names, v.VariantName)
					if v.InitialInstanceCount != nil {
						n += *v.InitialInstanceCount
					}
				}
				t.row(ec.EndpointConfigName, strings.Join(names, ","), n, ago(ec.CreationTime, now))
			}
			return t.flush()
		},
	}
}

func endpointConfigDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show an endpoint config and its variants",
		Args:  exactArgs(1, "an endpoint config name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ec catalog.EndpointConfig
			if ok, err := g.fetch(cmd, http.MethodGet, native.EndpointConfigPath(args[0]), nil, &ec); !ok {
				return err
			}
			w := cmd.OutOrStdout()
			if err := fields(w, "Name", ec.EndpointConfigName, "ARN", ec.EndpointConfigArn, "Created", stamp(ec.CreationTime, time.Now())); err != nil {
				return err
			}
			fmt.Fprintln(w)
			t := newTable(w, "VARIANT", "MODEL", "INSTANCE TYPE", "COUNT", "WEIGHT", "ROUTING")
			for _, v := range ec.ProductionVariants {
				count, weight, routing := "-", "-", "LEAST_OUTSTANDING_REQUESTS"
				if v.InitialInstanceCount != nil {
					count = strconv.Itoa(*v.InitialInstanceCount)
				}
				if v.InitialVariantWeight != nil {
					weight = num(*v.InitialVariantWeight)
				}
				if v.RoutingConfig != nil {
					routing = v.RoutingConfig.RoutingStrategy
				}
				t.row(v.VariantName, v.ModelName, orDash(v.InstanceType), count, weight, routing)
			}
			return t.flush()
		},
	}
}

func endpointConfigDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an endpoint config",
		Args:  exactArgs(1, "an endpoint config name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ok, err := g.fetch(cmd, http.MethodDelete, native.EndpointConfigPath(args[0]), nil, nil); !ok {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted endpoint config %s\n", args[0])
			return nil
		},
	}
}
