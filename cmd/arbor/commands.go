package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	docs "github.com/urfave/cli-docs/v3"
	"github.com/urfave/cli/v3"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/daemon"
	"github.com/arbor-cri/arbor/version"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "print the effective configuration as commented TOML (feeding it back yields the same config)",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "default", Usage: "print the defaults instead"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg := config.Default()
			if !cmd.Bool("default") {
				ld, err := loadValid(ctx, cmd)
				if err != nil {
					return err
				}
				cfg = ld.Config
			}
			return config.Render(&cfg, os.Stdout)
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, git commit and Go version",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			v := version.Get()
			if cmd.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			fmt.Printf("arbor version %s\ncommit: %s\ngo: %s\n", v.Version, v.Commit, v.GoVersion)
			return nil
		},
	}
}

func wipeCommand() *cli.Command {
	return &cli.Command{
		Name:  "wipe",
		Usage: "remove every pod, container and image (the daemon must be stopped)",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			ld, err := loadValid(ctx, cmd)
			if err != nil {
				return err
			}
			log := newLogger(ld.Config.LogFormat, levelVar(ld.Config.LogLevel))
			rep, err := daemon.Wipe(ctx, &ld.Config, log)
			if err != nil {
				return err
			}
			fmt.Printf("removed %d pods and containers, %d leftovers; %d could not be removed\n",
				rep.Wiped, rep.Orphans, rep.Failed)
			return nil
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (roff)",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			page, err := docs.ToMan(cmd.Root())
			if err != nil {
				return err
			}
			_, err = fmt.Print(page)
			return err
		},
	}
}
