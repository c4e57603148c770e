// Package cli is inferbox's command line: `inferbox serve` runs the server;
// the other commands (model, endpoint-config, endpoint, deploy, invoke,
// invoke-async, autoscaling, transform) are clients of a running server's
// native REST API (invoke-async also of its S3 API, for the input and
// output), printing
// tables for people and the API's JSON with --json.
//
// cli imports the composition root (for serve) and the native API's client;
// nothing imports cli but cmd/inferbox.
package cli

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Execute runs the command line with args on the process's standard
// streams; ctx is cancelled on SIGINT/SIGTERM.
func Execute(ctx context.Context, args []string) error {
	return ExecuteWith(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// ExecuteWith runs the command line with args reading stdin and writing
// stdout and stderr (results on stdout; progress, usage and help on stderr).
// Defaults for --server and --access-key come from INFERBOX_SERVER and
// INFERBOX_ACCESS_KEY. A returned error is the message to print; ExitCode
// says which status to exit with.
func ExecuteWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "inferbox",
		Short:         "Self-hosted model inference: SageMaker's and Bedrock's modes on your own machines",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &UsageError{Err: err, Usage: c.UseLine()}
	})
	g := &globals{}
	g.register(root, os.Getenv)
	root.AddCommand(serveCmd())
	root.AddCommand(generateCmd())
	for _, c := range clientCommands(g) {
		root.AddCommand(c)
	}
	return root.ExecuteContext(ctx)
}

// UsageError is a command line the commands cannot run: a bad flag, a
// missing argument.
type UsageError struct {
	Err   error
	Usage string
}

func (e *UsageError) Error() string {
	if e.Usage == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + " (usage: " + e.Usage + ")"
}

func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode is the process status for an error ExecuteWith returned: 0 for
// nil, 2 for a usage error, 1 for anything else.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}
