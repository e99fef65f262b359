// Package hookwatcher is the "hooks" service: it watches the hook folders
// of a hooks.Manager with inotify and reloads the manager when a hook file
// is added, changed or removed, so new containers get the new hooks
// without a restart. A folder that does not exist yet is watched through
// its nearest existing ancestor and picked up once it is created.
package hookwatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/arbor-cri/arbor/hooks"
)

// DefaultDebounce is how long events are gathered before one reload.
const DefaultDebounce = 200 * time.Millisecond

// Watcher reloads a hooks.Manager when its folders change.
type Watcher struct {
	manager  *hooks.Manager
	debounce time.Duration
	log      *slog.Logger
}

// New returns a watcher of m's folders that reloads m at most once per
// debounce (DefaultDebounce when not positive).
func New(m *hooks.Manager, debounce time.Duration, log *slog.Logger) *Watcher {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	return &Watcher{manager: m, debounce: debounce, log: log}
}

func (w *Watcher) String() string { return "hooks" }

// Serve watches until ctx is cancelled, then returns nil. It reloads once
// at the start (changes made while it was not watching count) and once per
// burst of events. It fails only when inotify does.
func (w *Watcher) Serve(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("starting inotify: %w", err)
	}
	defer fw.Close()
	t := newTargets(w.manager.Dirs())
	if err := t.sync(fw); err != nil {
		return err
	}
	w.reload()
	return w.loop(ctx, fw, t)
}

// loop gathers relevant events and, debounce after the first of a burst,
// re-plans the watches and reloads.
func (w *Watcher) loop(ctx context.Context, fw *fsnotify.Watcher, t *targets) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	pending := false
	arm := func() {
		if !pending {
			pending = true
			timer.Reset(w.debounce)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("inotify watcher closed")
			}
			if t.relevant(ev.Name) {
				w.log.Debug("Hook folder event", "path", ev.Name, "op", ev.Op.String())
				arm()
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("inotify watcher closed")
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("watching hook folders: %w", err)
			}
			w.log.Warn("Hook folder events lost; reloading all hooks", "error", err)
			arm()
		case <-timer.C:
			pending = false
			if err := t.sync(fw); err != nil {
				return err
			}
			w.reload()
		}
	}
}

// reload reloads the manager and logs what changed. The manager itself
// logs rejected files and refused reloads.
func (w *Watcher) reload() {
	ch, err := w.manager.ReloadChanges()
	if err != nil {
		w.log.Debug("Hook reload had errors", "error", err)
	}
	if ch.Empty() {
		w.log.Debug("Hooks reloaded; nothing changed", "hooks", w.manager.Names())
		return
	}
	w.log.Info("Hooks reloaded", "added", ch.Added, "removed", ch.Removed, "changed", ch.Changed,
		"hooks", w.manager.Names())
}
