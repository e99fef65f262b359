// Command arbor is the Arbor CRI runtime daemon and its command-line
// client. This package only wires: it parses the command line, sets up
// logging and hands a loaded configuration to package daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v3"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	// containers/storage re-executes this binary for some layer work
	// (chrooted tar extraction); such a child runs its task and exits here.
	if reexec.Init() {
		return
	}
	if err := newApp().Run(context.Background(), os.Args); err != nil {
		code := 1
		var exit cli.ExitCoder
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		}
		if msg := err.Error(); msg != "" {
			if !strings.HasPrefix(msg, "arbor:") {
				msg = "arbor: " + msg
			}
			fmt.Fprintln(os.Stderr, msg)
		}
		os.Exit(code)
	}
}

// exitBadConfig is the exit code for a bad flag, environment value or
// config file.
const exitBadConfig = 2

func newApp() *cli.Command {
	return &cli.Command{
		Name:  "arbor",
		Usage: "a Kubernetes container runtime (CRI) built as a supervisor tree",
		Description: "Run without a subcommand, arbor is the node daemon: it serves the CRI on a unix socket.\n" +
			"Every option is a flag, an ARBOR_* environment variable and a key in the TOML config file;\n" +
			"the precedence is flag > environment > drop-in files > main file > default.",
		Flags:                 daemonFlags(),
		Action:                runDaemon,
		EnableShellCompletion: true,
		OnUsageError: func(ctx context.Context, cmd *cli.Command, err error, isSubcommand bool) error {
			return cli.Exit("arbor: "+err.Error(), exitBadConfig)
		},
		ExitErrHandler: func(context.Context, *cli.Command, error) {}, // main decides the exit
		Commands: []*cli.Command{
			configCommand(),
			versionCommand(),
			statusCommand(),
			wipeCommand(),
			manCommand(),
		},
	}
}
