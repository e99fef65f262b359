package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/urfave/cli/v3"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/daemon"
)

// runDaemon is the root command's action: load and validate the config,
// set up logging and run the daemon.
func runDaemon(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Present() {
		return cli.Exit("arbor: unknown command "+cmd.Args().First(), exitBadConfig)
	}
	ld, err := loadValid(ctx, cmd)
	if err != nil {
		return err
	}
	level := levelVar(ld.Config.LogLevel)
	log := newLogger(ld.Config.LogFormat, level)
	slog.SetDefault(log)
	if text, err := toml.Marshal(ld.Config); err == nil {
		log.Info("Effective config", "toml", strings.TrimSpace(string(text)))
	}

	d := daemon.New(daemon.Options{
		Config: ld,
		Reload: func() (*config.Loaded, error) { return loadConfig(cmd) },
		Log:    log,
		Level:  level,
	})
	if err := d.Run(ctx); err != nil {
		log.Error("Arbor stopped with an error", "error", err)
		return cli.Exit("arbor: "+err.Error(), 1)
	}
	return nil
}

func levelVar(name string) *slog.LevelVar {
	level := new(slog.LevelVar)
	level.Set(daemon.ParseLevel(name))
	return level
}
