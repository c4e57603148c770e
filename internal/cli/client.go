package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
)

// DefaultServer is where client commands look for a server.
const DefaultServer = "http://127.0.0.1:8080"

// globals are the flags every client command shares.
type globals struct {
	server    string
	accessKey string
	// envAccessKey is INFERBOX_ACCESS_KEY, used when --access-key is not given.
	envAccessKey string
	json         bool
	poll         time.Duration // --wait's polling interval
	timeout      time.Duration // --wait's limit
}

func (g *globals) register(root *cobra.Command, getenv func(string) string) {
	server := getenv("INFERBOX_SERVER")
	if server == "" {
		server = DefaultServer
	}
	f := root.PersistentFlags()
	f.StringVar(&g.server, "server", server, "inferbox server URL (env INFERBOX_SERVER)")
	// The environment's key is not the flag's default: help would print it.
	g.envAccessKey = getenv("INFERBOX_ACCESS_KEY")
	f.StringVar(&g.accessKey, "access-key", "", "credentials as <access-key-id>:<secret> (env INFERBOX_ACCESS_KEY)")
	f.BoolVar(&g.json, "json", false, "print the API's JSON instead of tables")
	f.DurationVar(&g.poll, "poll-interval", time.Second, "how often --wait polls the server")
	f.DurationVar(&g.timeout, "wait-timeout", 30*time.Minute, "how long --wait waits at most")
	_ = f.MarkHidden("poll-interval")
}

func (g *globals) client() *native.Client {
	key := g.accessKey
	if key == "" {
		key = g.envAccessKey
	}
	return native.NewClient(g.server, key, nil)
}

// clientCommands are the commands that talk to a running server.
func clientCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{
		modelCmd(g),
		endpointConfigCmd(g),
		endpointCmd(g),
		deployCmd(g),
		invokeCmd(g),
		invokeAsyncCmd(g),
		autoscalingCmd(g),
		transformCmd(g),
		costCmd(g),
		adviseCmd(g),
		customModelCmd(g),
	}
}

// fetch performs a native API request. With --json it prints the server's
// JSON and returns false; otherwise it decodes the answer into out (if
// non-nil) and returns true for the caller to print it for people.
func (g *globals) fetch(cmd *cobra.Command, method, path string, in, out any) (bool, error) {
	b, err := g.client().Raw(cmd.Context(), method, path, in)
	if err != nil {
		return false, err
	}
	if g.json {
		return false, printJSON(cmd.OutOrStdout(), b)
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return false, fmt.Errorf("decode server response: %w", err)
		}
	}
	return true, nil
}

// printJSON writes the server's JSON indented (or {} for an empty answer).
func printJSON(w io.Writer, b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		b = []byte("{}")
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("server sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// exactArgs is cobra.ExactArgs returning a UsageError.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &UsageError{Err: fmt.Errorf("%s wants %s, got %d argument(s)", cmd.CommandPath(), names, len(args)), Usage: cmd.UseLine()}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs returning a UsageError.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &UsageError{Err: fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args), Usage: cmd.UseLine()}
	}
	return nil
}

// required returns a UsageError naming flags that were not given.
func required(cmd *cobra.Command, flags ...string) error {
	for _, f := range flags {
		if !cmd.Flags().Changed(f) {
			return &UsageError{Err: fmt.Errorf("--%s is required", f), Usage: cmd.UseLine()}
		}
	}
	return nil
}

// progress prints a --wait progress line on stderr.
func progress(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
