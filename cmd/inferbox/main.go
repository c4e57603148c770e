// Command inferbox is the inferbox binary: it parses the command line,
// turns SIGINT/SIGTERM into context cancellation, and hands over to the CLI.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/inferbox/inferbox/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Execute(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "inferbox:", err)
		os.Exit(cli.ExitCode(err))
	}
}
