package daemon

import (
	"fmt"
	"log/slog"
	"reflect"

	"github.com/arbor-cri/arbor/config"
)

// reload re-reads the configuration for SIGHUP. A bad file keeps the old
// configuration. Settings that can change live are applied; the others are
// logged as needing a restart.
func (d *Daemon) reload() {
	if d.opts.Reload == nil {
		return
	}
	ld, err := d.opts.Reload()
	if err == nil {
		err = ld.Validate()
	}
	if err != nil {
		d.log.Error("Config reload rejected, keeping the old config", "error", err)
		return
	}
	old, next := d.config(), ld.Config
	applied := *old
	changes := diff(old, &next)
	for _, ch := range changes {
		live := applyLive(&applied, &next, ch.key)
		d.log.Info("Config changed", "key", ch.key, "old", ch.old, "new", ch.new, "applied", live)
		if !live {
			d.log.Warn("Config change needs a restart", "key", ch.key)
		}
	}
	if d.opts.Level != nil {
		d.opts.Level.Set(parseLevel(applied.LogLevel))
	}
	d.cfg.Store(&applied)
	d.log.Info("Config reloaded", "changes", len(changes))
}

// applyLive copies the setting key from next into applied if it can
// change while the daemon runs, and reports whether it did.
func applyLive(applied, next *config.Config, key string) bool {
	switch key {
	case "log_level":
		applied.LogLevel = next.LogLevel
		return true
	}
	return false
}

type change struct {
	key      string
	old, new string
}

func diff(a, b *config.Config) []change {
	fa, fb := config.Fields(a), config.Fields(b)
	var out []change
	for i := range fa {
		if !reflect.DeepEqual(fa[i].Value(), fb[i].Value()) {
			out = append(out, change{fa[i].Key, fmt.Sprint(fa[i].Value()), fmt.Sprint(fb[i].Value())})
		}
	}
	return out
}

// parseLevel maps a validated log level name to its slog level.
func parseLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}

// ParseLevel is parseLevel for cmd/arbor.
func ParseLevel(s string) slog.Level { return parseLevel(s) }
