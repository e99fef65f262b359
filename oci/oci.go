// Package oci runs containers through conmon and an OCI runtime binary
// (runc by default). It owns the per-container files conmon needs (state
// directory, exit file, attach socket link) and drives the runtime CLI for
// every lifecycle step the CRI needs: create, start, kill, stop, delete,
// state, resource updates, log reopening and exec.
//
// Containers outlive the daemon: conmon is started in its own session and
// double-forks, so after Create returns it is no child of the calling
// process. Everything Runtime needs about a container is kept on disk under
// Config.StateDir, so a new Runtime built from the same Config can manage
// containers created by an earlier one.
package oci

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrUnknownHandler means the runtime handler name is not configured.
	ErrUnknownHandler = errors.New("unknown runtime handler")
	// ErrNotFound means the container is unknown to this Runtime.
	ErrNotFound = errors.New("container not found")
	// ErrExists means a container with that ID already exists.
	ErrExists = errors.New("container already exists")
	// ErrTimeout means an operation did not finish within its timeout.
	ErrTimeout = errors.New("timed out")
	// ErrNotRunning means the container has no running process.
	ErrNotRunning = errors.New("container not running")
)

// Handler is one named OCI runtime configuration (a CRI runtime handler).
type Handler struct {
	// Name is the handler name the CRI uses (e.g. "runc").
	Name string
	// RuntimePath is the OCI runtime binary (e.g. /usr/sbin/runc).
	RuntimePath string
	// RuntimeRoot is the runtime's --root state directory; empty means
	// <StateDir>/.runtime/<Name>.
	RuntimeRoot string
	// RuntimeArgs are extra global flags passed to every runtime call.
	RuntimeArgs []string
}

// Config configures a Runtime.
type Config struct {
	// ConmonPath is the conmon binary (e.g. /usr/bin/conmon).
	ConmonPath string
	// Handlers maps handler names to runtimes.
	Handlers map[string]Handler
	// DefaultHandler is used when CreateOptions.Handler is empty.
	DefaultHandler string
	// ExitDir is where conmon writes one exit file per container ID.
	ExitDir string
	// AttachDir holds one link per container ID to its attach socket folder.
	AttachDir string
	// StateDir holds per-container records and pid files.
	StateDir string
	// LogLevel is conmon's --log-level (debug, info, warn, error); empty
	// means "error".
	LogLevel string
}

// Runtime manages containers through conmon and OCI runtimes. It is safe for
// concurrent use; per-container calls are serialized by the runtime binary.
type Runtime struct {
	cfg Config
	log *slog.Logger
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// New validates cfg, creates its folders and returns a Runtime.
func New(cfg Config, log *slog.Logger) (*Runtime, error) {
	if cfg.ConmonPath == "" {
		return nil, errors.New("validating config: conmon path is empty")
	}
	if _, ok := cfg.Handlers[cfg.DefaultHandler]; !ok {
		return nil, fmt.Errorf("validating config: default handler %q: %w", cfg.DefaultHandler, ErrUnknownHandler)
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "error"
	}
	handlers := make(map[string]Handler, len(cfg.Handlers))
	for name, h := range cfg.Handlers {
		h.Name = name
		if h.RuntimeRoot == "" {
			h.RuntimeRoot = filepath.Join(cfg.StateDir, ".runtime", name)
		}
		handlers[name] = h
	}
	cfg.Handlers = handlers
	for _, dir := range []string{cfg.ExitDir, cfg.AttachDir, cfg.StateDir} {
		if dir == "" {
			return nil, errors.New("validating config: exit, attach and state folders must be set")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating runtime folder: %w", err)
		}
	}
	return &Runtime{cfg: cfg, log: log}, nil
}

// Handler returns the named handler, or the default one for "".
func (r *Runtime) Handler(name string) (Handler, error) {
	if name == "" {
		name = r.cfg.DefaultHandler
	}
	h, ok := r.cfg.Handlers[name]
	if !ok {
		return Handler{}, fmt.Errorf("handler %q: %w", name, ErrUnknownHandler)
	}
	return h, nil
}

func validateID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container id %q", id)
	}
	return nil
}

// ExitFilePath is the file conmon writes the exit code of container id to.
func (r *Runtime) ExitFilePath(id string) string {
	return filepath.Join(r.cfg.ExitDir, id)
}

// AttachSocketPath is the SOCK_SEQPACKET attach socket conmon serves for
// container id. Its path goes through a short link in AttachDir so it fits
// the unix socket path limit as long as AttachDir is short.
func (r *Runtime) AttachSocketPath(id string) string {
	return filepath.Join(r.attachLink(id), "attach")
}

func (r *Runtime) attachLink(id string) string {
	return filepath.Join(r.cfg.AttachDir, id)
}

func (r *Runtime) stateDir(id string) string {
	return filepath.Join(r.cfg.StateDir, id)
}

func (r *Runtime) conmonPidFile(id string) string {
	return filepath.Join(r.stateDir(id), "conmon.pid")
}

func (r *Runtime) containerPidFile(id string) string {
	return filepath.Join(r.stateDir(id), "container.pid")
}
