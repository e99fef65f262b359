package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/fsnotify/fsnotify"
)

// Serve watches ConfDir (and the existing plugin directories) and reloads the
// default network whenever a configuration file is created, changed, renamed
// or removed. It creates ConfDir if missing and returns when ctx is done.
func (m *Manager) Serve(ctx context.Context) error {
	w, err := m.newWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	m.reload(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watching cni configuration: event channel closed")
			}
			if m.relevant(ev) {
				m.reload(ctx)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watching cni configuration: error channel closed")
			}
			m.log.Warn("CNI configuration watch error", "error", err)
		}
	}
}

// newWatcher watches ConfDir, creating it, and every plugin dir that exists.
func (m *Manager) newWatcher() (*fsnotify.Watcher, error) {
	if err := os.MkdirAll(m.cfg.ConfDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cni config dir: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("creating cni config watcher: %w", err)
	}
	if err := w.Add(m.cfg.ConfDir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watching %s: %w", m.cfg.ConfDir, err)
	}
	for _, dir := range m.cfg.PluginDirs {
		if _, err := os.Stat(dir); err == nil {
			if err := w.Add(dir); err != nil {
				m.log.Warn("CNI plugin dir not watched", "dir", dir, "error", err)
			}
		}
	}
	return w, nil
}

// relevant reports whether ev may change the default network: any change of
// a configuration file, or any change in a plugin directory.
func (m *Manager) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if filepath.Dir(ev.Name) != filepath.Clean(m.cfg.ConfDir) {
		return true
	}
	return slices.Contains(confExtensions, filepath.Ext(ev.Name))
}
