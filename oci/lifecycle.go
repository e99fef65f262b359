package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// killGrace bounds the wait for a container after SIGKILL.
	killGrace = 10 * time.Second
	// conmonExitGrace bounds the wait for conmon to exit on Delete before
	// it is killed.
	conmonExitGrace = 5 * time.Second
	// runtimeCallBudget is added to Stop's bound for the runtime calls.
	runtimeCallBudget = 10 * time.Second
)

// ReadExit reads the exit file conmon wrote for id. ok is false (with a nil
// error) while the container has not exited. finishedAt is the file's
// modification time.
func (r *Runtime) ReadExit(id string) (code int, finishedAt time.Time, ok bool, err error) {
	if err := validateID(id); err != nil {
		return 0, time.Time{}, false, err
	}
	path := r.ExitFilePath(id)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("reading exit file: %w", err)
	}
	code, err = strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("parsing exit file of %s: %w", id, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("reading exit file time: %w", err)
	}
	return code, info.ModTime(), true, nil
}

// Lost reports whether the container's exit will never be recorded: its
// conmon is gone without writing the exit file (killed, crashed, or the
// node rebooted), and so is the container's init process.
func (r *Runtime) Lost(id string) bool {
	return !fileExists(r.ExitFilePath(id)) && r.exited(id)
}

// exited reports whether the container's exit has been recorded, or, with
// no conmon left to record it, whether its init process is gone.
func (r *Runtime) exited(id string) bool {
	if fileExists(r.ExitFilePath(id)) {
		return true
	}
	if conmon, _ := r.ConmonPID(id); conmon != 0 {
		return false
	}
	pid, _ := readPidFile(r.containerPidFile(id))
	return !processAlive(pid)
}

// Stop sends sig (SIGTERM if 0) and waits up to timeout for the container
// to exit, then sends SIGKILL and waits a bounded grace. It returns once the
// exit is recorded, and never blocks much past timeout plus that grace.
// Stopping an exited container is a no-op.
func (r *Runtime) Stop(ctx context.Context, id string, sig syscall.Signal, timeout time.Duration) error {
	if _, _, err := r.handlerFor(id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 0)+killGrace+runtimeCallBudget)
	defer cancel()
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	done := func() bool { return r.exited(id) }
	if done() {
		return nil
	}
	if timeout > 0 && sig != syscall.SIGKILL {
		if err := r.Kill(ctx, id, sig); err != nil {
			return fmt.Errorf("stopping container: %w", err)
		}
		if waitUntil(ctx, timeout, done) {
			return nil
		}
		r.log.Info("Killing container after stop timeout", "container_id", id, "timeout", timeout)
	}
	if err := r.Kill(ctx, id, syscall.SIGKILL); err != nil {
		return fmt.Errorf("stopping container: %w", err)
	}
	if waitUntil(ctx, killGrace, done) {
		return nil
	}
	return fmt.Errorf("stopping container %s: %w", id, ErrTimeout)
}

// Delete removes the container from the runtime (killing it if needed),
// waits for its conmon to exit (killing it after a grace), and removes its
// exit file, attach link and state folder. Deleting an unknown container
// succeeds.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	_, h, err := r.handlerFor(id)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		if _, err := r.runRuntime(ctx, h, nil, "delete", "--force", id); err != nil && !isNotExist(err) {
			return fmt.Errorf("deleting container: %w", err)
		}
	}
	if err := r.endConmon(ctx, id); err != nil {
		return err
	}
	return r.removeFiles(id)
}

// endConmon waits for the conmon of id to exit, killing it after a grace.
func (r *Runtime) endConmon(ctx context.Context, id string) error {
	gone := func() bool { pid, _ := r.ConmonPID(id); return pid == 0 }
	if waitUntil(ctx, conmonExitGrace, gone) {
		return nil
	}
	if pid, _ := r.ConmonPID(id); pid != 0 {
		r.log.Warn("Killing conmon that outlived its container", "container_id", id, "conmon_pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if !waitUntil(ctx, killGrace, gone) {
		return fmt.Errorf("waiting for conmon of %s to exit: %w", id, ErrTimeout)
	}
	return nil
}

// removeFiles removes the per-container files this package owns.
func (r *Runtime) removeFiles(id string) error {
	for _, p := range []string{r.ExitFilePath(id), r.attachLink(id)} {
		if err := removeIfExists(p); err != nil {
			return fmt.Errorf("removing container file: %w", err)
		}
	}
	if err := os.RemoveAll(r.stateDir(id)); err != nil {
		return fmt.Errorf("removing container state folder: %w", err)
	}
	return nil
}

// Size is a terminal size in character cells.
type Size struct {
	Width, Height uint16
}

// conmon control message types written to the bundle's "ctl" fifo.
const (
	ctlResize     = 1
	ctlReopenLogs = 2
)

// reopenLogTimeout bounds how long ReopenLog waits for conmon to create
// the new log file.
const reopenLogTimeout = 10 * time.Second

// ReopenLog asks conmon to reopen the container's log file (after the
// caller rotated it) and returns once the new file exists, as the CRI
// requires; conmon handles the request asynchronously.
func (r *Runtime) ReopenLog(ctx context.Context, id string) error {
	rec, err := r.loadRecord(id)
	if err != nil {
		return err
	}
	if err := r.writeCtl(id, fmt.Sprintf("%d 0 0\n", ctlReopenLogs)); err != nil {
		return err
	}
	if rec.LogPath == "" || waitUntil(ctx, reopenLogTimeout, func() bool { return fileExists(rec.LogPath) }) {
		return nil
	}
	return fmt.Errorf("reopening log of %s: %s not created within %s", id, rec.LogPath, reopenLogTimeout)
}

// ResizeTerminal resizes the container's terminal (Terminal containers).
func (r *Runtime) ResizeTerminal(id string, s Size) error {
	return r.writeCtl(id, fmt.Sprintf("%d %d %d\n", ctlResize, s.Height, s.Width))
}

// writeCtl writes one control line to conmon's ctl fifo in the bundle.
func (r *Runtime) writeCtl(id, line string) error {
	rec, err := r.loadRecord(id)
	if err != nil {
		return err
	}
	if pid, _ := r.ConmonPID(id); pid == 0 {
		return fmt.Errorf("writing conmon control fifo of %s: %w", id, ErrNotRunning)
	}
	f, err := os.OpenFile(filepath.Join(rec.BundleDir, "ctl"), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("opening conmon control fifo: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("writing conmon control fifo: %w", err)
	}
	return nil
}
