package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// defaultCreateTimeout bounds Create when ctx has no deadline.
const defaultCreateTimeout = 4 * time.Minute

// CreateOptions describes one container to create.
type CreateOptions struct {
	// ID is the container ID (also its runtime ID and conmon -c/-u).
	ID string
	// Handler names the runtime handler; empty means the default handler.
	Handler string
	// BundleDir holds config.json (written by the caller) and the rootfs.
	// conmon also creates its ctl/winsz fifos and attach socket here.
	BundleDir string
	// LogPath is the CRI log file conmon writes (k8s-file format).
	LogPath string
	// Terminal allocates a pseudo-TTY (config.json process.terminal must
	// also be true).
	Terminal bool
	// Stdin keeps a stdin pipe open to the container (attach can write it).
	Stdin bool
	// StdinOnce closes stdin after the first attached client disconnects.
	StdinOnce bool
	// ConmonCgroup, if set, is a cgroup path (relative to every cgroup v1
	// hierarchy under /sys/fs/cgroup) conmon is moved into before it
	// starts the runtime; the caller owns removing it.
	ConmonCgroup string
}

// syncMessage is what conmon (--api-version 1) writes to the sync pipe.
type syncMessage struct {
	Data    int    `json:"data"`
	Message string `json:"message,omitempty"`
}

// Create starts conmon, which runs the runtime's create for opts.BundleDir,
// and waits until the container's init process exists. It returns that
// process's host pid. The runtime's error text is returned on failure, and
// nothing is left behind (no conmon, runtime state or files).
func (r *Runtime) Create(ctx context.Context, opts CreateOptions) (pid int, retErr error) {
	if err := validateID(opts.ID); err != nil {
		return 0, err
	}
	h, err := r.Handler(opts.Handler)
	if err != nil {
		return 0, err
	}
	if err := os.Mkdir(r.stateDir(opts.ID), 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("container %s: %w", opts.ID, ErrExists)
		}
		return 0, fmt.Errorf("creating container state folder: %w", err)
	}
	defer func() {
		if retErr != nil {
			r.rollbackCreate(opts.ID)
		}
	}()
	rec := record{ID: opts.ID, Handler: h.Name, BundleDir: opts.BundleDir, LogPath: opts.LogPath}
	if err := r.writeRecord(rec); err != nil {
		return 0, err
	}
	if err := removeIfExists(r.ExitFilePath(opts.ID)); err != nil {
		return 0, fmt.Errorf("removing stale exit file: %w", err)
	}
	pid, err = r.runConmon(ctx, h, opts)
	if err != nil {
		return 0, err
	}
	r.log.Debug("Created container", "container_id", opts.ID, "pid", pid, "handler", h.Name)
	return pid, nil
}

// rollbackCreate removes everything a failed Create may have left.
func (r *Runtime) rollbackCreate(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Delete(ctx, id); err != nil {
		r.log.Warn("Rolling back container create failed", "container_id", id, "error", err)
	}
}

// conmonArgs builds conmon's command line for a create.
func (r *Runtime) conmonArgs(h Handler, opts CreateOptions) []string {
	args := []string{
		"--api-version", "1",
		"-c", opts.ID, "-u", opts.ID, "-n", opts.ID,
		"-r", h.RuntimePath,
		"-b", opts.BundleDir,
		"-p", r.containerPidFile(opts.ID),
		"-P", r.conmonPidFile(opts.ID),
		"--persist-dir", r.stateDir(opts.ID),
		"--exit-dir", r.cfg.ExitDir,
		"--socket-dir-path", r.cfg.AttachDir,
		"-l", "k8s-file:" + opts.LogPath,
		"--log-level", r.cfg.LogLevel,
		"--runtime-arg", "--root=" + h.RuntimeRoot,
	}
	for _, a := range h.RuntimeArgs {
		args = append(args, "--runtime-arg", a)
	}
	switch {
	case opts.Terminal:
		args = append(args, "-t")
	case opts.Stdin:
		args = append(args, "-i")
		if !opts.StdinOnce {
			args = append(args, "--leave-stdin-open")
		}
	}
	return args
}

// runConmon starts conmon detached, releases it through the start pipe and
// reads the container pid (or the runtime's error) from the sync pipe.
func (r *Runtime) runConmon(ctx context.Context, h Handler, opts CreateOptions) (int, error) {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating sync pipe: %w", err)
	}
	defer syncR.Close()
	startR, startW, err := os.Pipe()
	if err != nil {
		syncW.Close()
		return 0, fmt.Errorf("creating start pipe: %w", err)
	}
	defer startW.Close()
	stderrPath := filepath.Join(r.stateDir(opts.ID), "conmon.stderr")
	cmd, err := r.startConmon(h, opts, stderrPath, syncW, startR)
	syncW.Close()
	startR.Close()
	if err != nil {
		return 0, err
	}
	if err := r.releaseConmon(cmd, startW, opts.ConmonCgroup); err != nil {
		return 0, err
	}
	return readSyncPid(ctx, syncR, stderrPath)
}

// startConmon starts conmon's first process in a new session.
func (r *Runtime) startConmon(h Handler, opts CreateOptions, stderrPath string, syncW, startR *os.File) (*exec.Cmd, error) {
	stderr, err := os.Create(stderrPath)
	if err != nil {
		return nil, fmt.Errorf("creating conmon stderr file: %w", err)
	}
	defer stderr.Close()
	cmd := exec.Command(r.cfg.ConmonPath, r.conmonArgs(h, opts)...)
	cmd.Dir = opts.BundleDir
	cmd.Stderr = stderr
	cmd.Stdout = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = []*os.File{syncW, startR} // fds 3 and 4
	cmd.Env = []string{"_OCI_SYNCPIPE=3", "_OCI_STARTPIPE=4", "PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting conmon: %w", err)
	}
	return cmd, nil
}

// releaseConmon moves conmon into its cgroup, lets it go on through the start
// pipe and reaps its first process, which forks the monitor and exits at
// once, so the daemon keeps neither a child nor a zombie.
func (r *Runtime) releaseConmon(cmd *exec.Cmd, startW *os.File, cgroup string) error {
	err := moveToCgroup(cmd.Process.Pid, cgroup)
	if err == nil {
		if _, werr := startW.Write([]byte{0}); werr != nil {
			err = fmt.Errorf("writing conmon start pipe: %w", werr)
		}
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("running conmon: %w", err)
	}
	return nil
}

// readSyncPid decodes conmon's first sync message: the container pid, or -1
// and the runtime's error output.
func readSyncPid(ctx context.Context, syncR *os.File, stderrPath string) (int, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultCreateTimeout)
	}
	if err := syncR.SetReadDeadline(deadline); err != nil {
		return 0, fmt.Errorf("setting sync pipe deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = syncR.SetReadDeadline(time.Now()) })
	defer stop()
	var msg syncMessage
	if err := json.NewDecoder(syncR).Decode(&msg); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = ErrTimeout
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
			}
		}
		return 0, fmt.Errorf("reading container pid from conmon: %w%s", err, conmonStderr(stderrPath))
	}
	if msg.Data <= 0 && msg.Message == "" {
		return 0, fmt.Errorf("creating container: runtime gave no reason%s", conmonStderr(stderrPath))
	}
	if msg.Data <= 0 {
		return 0, fmt.Errorf("creating container: %s", runtimeMessage([]byte(msg.Message)))
	}
	return msg.Data, nil
}

// conmonStderr returns conmon's own error output for an error message.
func conmonStderr(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	return ": conmon: " + strings.TrimSpace(string(data))
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
