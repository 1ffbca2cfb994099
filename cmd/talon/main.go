// Command talon runs jobs periodically, under constraints: the scheduler
// (talon serve) and the command line that talks to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/talonhq/talon/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
