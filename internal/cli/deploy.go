package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/catalog"
)

func deployCmd(g *globals) *cobra.Command {
	var (
		mf   modelFlags
		vf   variantFlags
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME --image IMG [--model-data URL] --instance-type T [--count N] [--wait]",
		Short: "Create a model, an endpoint config and an endpoint, all named NAME",
		Args:  exactArgs(1, "a name for the model, endpoint config and endpoint"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := required(cmd, "image", "instance-type"); err != nil {
				return err
			}
			m, err := mf.model(cmd, name)
			if err != nil {
				return err
			}
			ctx, c := cmd.Context(), g.client()
			if _, err := c.CreateModel(ctx, m); err != nil {
				return fmt.Errorf("create model: %w", err)
			}
			vf.model = name
			ec := &catalog.EndpointConfig{EndpointConfigName: name, ProductionVariants: []catalog.ProductionVariant{vf.production()}}
			if _, err := c.CreateEndpointConfig(ctx, ec); err != nil {
				return fmt.Errorf("create endpoint config: %w", err)
			}
			if !g.json {
				fmt.Fprintf(cmd.OutOrStdout(), "Created model %s and endpoint config %s\n", name, name)
			}
			return g.createEndpoint(cmd, name, name, wait)
		},
	}
	mf.register(cmd)
	vf.register(cmd, false)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the endpoint is InService (or Failed)")
	return cmd
}
