// Package cli is inferbox's command line: `inferbox serve` runs the server;
// the other commands (model, endpoint, invoke, autoscaling, ...) are
// clients of a running server's native REST API, printing tables for
// people and JSON with --json.
//
// cli imports the composition root (for serve) and the native API's client;
// nothing imports cli but cmd/inferbox.
package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// Execute runs the command line with args; ctx is cancelled on SIGINT/SIGTERM.
func Execute(ctx context.Context, args []string) error {
	root := &cobra.Command{
		Use:           "inferbox",
		Short:         "Self-hosted model inference: SageMaker's and Bedrock's modes on your own machines",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd())
	root.AddCommand(generateCmd())
	for _, c := range clientCommands() {
		root.AddCommand(c)
	}
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
