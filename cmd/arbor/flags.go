package main

import (
	"context"
	"sort"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/arbor-cri/arbor/config"
)

const (
	defaultConfigFile = "/etc/arbor/arbor.conf"
	defaultConfigDir  = "/etc/arbor/arbor.conf.d"
)

// daemonFlags builds one flag per setting from the config's struct tags,
// plus --config and --config-dir, sorted by name.
func daemonFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Value: defaultConfigFile, Sources: cli.EnvVars("ARBOR_CONFIG"),
			Usage: "main config file (TOML)", TakesFile: true},
		&cli.StringFlag{Name: "config-dir", Value: defaultConfigDir, Sources: cli.EnvVars("ARBOR_CONFIG_DIR"),
			Usage: "folder of drop-in config files, read in name order after the main file", TakesFile: true},
	}
	def := config.Default()
	for _, f := range config.Fields(&def) {
		if f.Flag != "" {
			flags = append(flags, flagFor(f))
		}
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i].Names()[0] < flags[j].Names()[0] })
	return flags
}

// flagFor returns a typed flag for a setting. Its environment variable is
// shown in the help but read by the config loader, so that an error can say
// which of flag and environment was wrong.
func flagFor(f config.Field) cli.Flag {
	usage := f.Usage + " [$" + f.Env() + "]"
	switch v := f.Value().(type) {
	case bool:
		return &cli.BoolFlag{Name: f.Flag, Usage: usage, Value: v}
	case int:
		return &cli.IntFlag{Name: f.Flag, Usage: usage, Value: v}
	case float64:
		return &cli.FloatFlag{Name: f.Flag, Usage: usage, Value: v}
	case config.Duration:
		return &cli.DurationFlag{Name: f.Flag, Usage: usage, Value: v.Std()}
	case []string:
		return &cli.StringSliceFlag{Name: f.Flag, Usage: usage, Value: v}
	default:
		return &cli.StringFlag{Name: f.Flag, Usage: usage, Value: f.Value().(string)}
	}
}

// loadConfig reads files and environment and applies the flags given on
// the command line, without validating.
func loadConfig(cmd *cli.Command) (*config.Loaded, error) {
	ld, err := config.Loader{
		File:     cmd.String("config"),
		Required: cmd.IsSet("config"),
		Dir:      cmd.String("config-dir"),
	}.Load()
	if err != nil {
		return nil, err
	}
	// The settings' flags have no environment sources, so IsSet means the
	// command line.
	for _, f := range config.Fields(&ld.Config) {
		if f.Flag == "" || !cmd.IsSet(f.Flag) {
			continue
		}
		v := cmd.Value(f.Flag)
		if d, ok := v.(time.Duration); ok {
			v = config.Duration(d)
		}
		if err := ld.SetFlag(f.Flag, v); err != nil {
			return nil, err
		}
	}
	return ld, nil
}

// loadValid is loadConfig followed by validation; any error is a bad
// configuration.
func loadValid(ctx context.Context, cmd *cli.Command) (*config.Loaded, error) {
	ld, err := loadConfig(cmd)
	if err == nil {
		err = ld.Validate()
	}
	if err != nil {
		return nil, cli.Exit("arbor: "+err.Error(), exitBadConfig)
	}
	return ld, nil
}
