// Package exitmonitor is the service that notices container exits. conmon
// writes one file per container, named by its ID, into the exit folder
// when the container's process ends; the monitor watches that folder with
// inotify and hands each new file's ID to the runtime, which records the
// exit code, reason and time. A conmon that dies first (killed, crashed)
// writes no file, so the monitor also has the runtime sweep its containers
// every few seconds for monitors that are gone.
package exitmonitor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultSweepInterval is how often Serve calls the sweep: a container
// whose conmon died is seen to end within about this long.
const DefaultSweepInterval = 5 * time.Second

// Monitor watches an exit folder.
type Monitor struct {
	dir    string
	exited func(id string)
	log    *slog.Logger

	// Sweep, when set before Serve, is called every SweepInterval.
	Sweep         func()
	SweepInterval time.Duration
}

// New returns a monitor of dir that calls exited with each container ID
// whose exit file appears. exited must be idempotent: a file may be
// reported more than once (at each start, and per write).
func New(dir string, exited func(id string), log *slog.Logger) *Monitor {
	return &Monitor{dir: dir, exited: exited, log: log, SweepInterval: DefaultSweepInterval}
}

func (m *Monitor) String() string { return "exit-monitor" }

// Serve watches until ctx is cancelled. Files that appeared while it was
// not watching (before a start or a restart) are reported first.
func (m *Monitor) Serve(ctx context.Context) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("creating exit folder: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("starting inotify: %w", err)
	}
	defer w.Close()
	if err := w.Add(m.dir); err != nil {
		return fmt.Errorf("watching exit folder: %w", err)
	}
	if err := m.scan(); err != nil {
		return err
	}
	var sweeps <-chan time.Time
	if m.Sweep != nil {
		t := time.NewTicker(m.SweepInterval)
		defer t.Stop()
		sweeps = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweeps:
			m.Sweep()
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("inotify watcher closed")
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) {
				m.report(filepath.Base(ev.Name))
			}
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("inotify watcher closed")
			}
			return fmt.Errorf("watching exit folder: %w", err)
		}
	}
}

func (m *Monitor) scan() error {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("listing exit folder: %w", err)
	}
	for _, e := range entries {
		m.report(e.Name())
	}
	return nil
}

func (m *Monitor) report(name string) {
	if strings.HasPrefix(name, ".") || strings.Contains(name, "~") {
		return // a temporary file of an atomic write
	}
	m.log.Debug("Container exit file", "container_id", name)
	m.exited(name)
}
