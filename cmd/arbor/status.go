package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/arbor-cri/arbor/supervisor"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "ask a running daemon over its socket's HTTP side",
		Commands: []*cli.Command{
			{Name: "info", Usage: "version, storage, cgroup driver and runtime handlers (JSON)",
				Action: func(ctx context.Context, cmd *cli.Command) error { return statusPrint(ctx, cmd, "/info") }},
			{Name: "config", Usage: "the daemon's effective configuration (TOML)",
				Action: func(ctx context.Context, cmd *cli.Command) error { return statusPrint(ctx, cmd, "/config") }},
			{Name: "container", Usage: "one container (JSON)", ArgsUsage: "ID",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() != 1 {
						return cli.Exit("arbor status container: give exactly one container ID", exitBadConfig)
					}
					return statusPrint(ctx, cmd, "/containers/"+cmd.Args().First())
				}},
			{Name: "tree", Usage: "each supervised service, its state and restart count", Action: statusTree},
			{Name: "leaks", Usage: "mounts, namespaces, cgroups, conmon processes, storage containers and files that belong to no known pod or container (JSON; exit 1 if any)",
				Action: statusLeaks},
		},
	}
}

// socketGet fetches path from the daemon serving the configured socket.
func socketGet(ctx context.Context, cmd *cli.Command, path string) ([]byte, error) {
	ld, err := loadValid(ctx, cmd)
	if err != nil {
		return nil, err
	}
	sock := ld.Config.API.Listen
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := client.Get("http://arbor" + path)
	if err != nil {
		return nil, fmt.Errorf("asking the daemon on %s: %w", sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s", e.Error)
		}
		return nil, fmt.Errorf("daemon answered %s", resp.Status)
	}
	return body, nil
}

func statusPrint(ctx context.Context, cmd *cli.Command, path string) error {
	body, err := socketGet(ctx, cmd, path)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(body)
	return err
}

func statusTree(ctx context.Context, cmd *cli.Command) error {
	body, err := socketGet(ctx, cmd, "/tree")
	if err != nil {
		return err
	}
	var states []supervisor.ServiceState
	if err := json.Unmarshal(body, &states); err != nil {
		return fmt.Errorf("reading the tree: %w", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tSERVICE\tSTATE\tRESTARTS\tPANICS\tSINCE\tLAST ERROR")
	for _, s := range states {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Domain, s.Name, s.State, s.Restarts, s.Panics,
			time.Since(s.Since).Round(time.Second), strings.ReplaceAll(s.LastError, "\n", " "))
	}
	return tw.Flush()
}

func statusLeaks(ctx context.Context, cmd *cli.Command) error {
	body, err := socketGet(ctx, cmd, "/leaks")
	if err != nil {
		return err
	}
	var leaks []json.RawMessage
	if err := json.Unmarshal(body, &leaks); err != nil {
		return fmt.Errorf("reading the leak report: %w", err)
	}
	if _, err := os.Stdout.Write(body); err != nil {
		return err
	}
	if len(leaks) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}
