package cli

import "github.com/spf13/cobra"

// clientCommands are the commands that talk to a running server.
func clientCommands() []*cobra.Command { return nil }
