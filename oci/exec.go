package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	// MaxExecSyncOutput caps each of ExecSync's stdout and stderr.
	MaxExecSyncOutput = 16 << 20
	// execPidFileWait bounds the wait for runc to report the exec'd pid
	// when an exec is cancelled while still starting.
	execPidFileWait = 5 * time.Second
)

// ExecResult is the outcome of ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// cappedBuffer keeps the first max bytes written and discards the rest, so
// the writer never blocks the process.
type cappedBuffer struct {
	buf []byte
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// execFiles are the temporary files of one exec.
type execFiles struct {
	process, pid string
}

// prepareExec writes the process spec for cmd (the container's own process
// settings with cmd as args) and picks a pid file name.
func (r *Runtime) prepareExec(id string, cmd []string, tty bool) (execFiles, error) {
	if len(cmd) == 0 {
		return execFiles{}, errors.New("preparing exec: empty command")
	}
	rec, err := r.loadRecord(id)
	if err != nil {
		return execFiles{}, err
	}
	proc, err := bundleProcess(rec.BundleDir)
	if err != nil {
		return execFiles{}, err
	}
	proc.Args = cmd
	proc.Terminal = tty
	proc.ConsoleSize = nil
	data, err := json.Marshal(proc)
	if err != nil {
		return execFiles{}, fmt.Errorf("encoding exec process: %w", err)
	}
	f, err := os.CreateTemp(r.stateDir(id), "exec-*.json")
	if err != nil {
		return execFiles{}, fmt.Errorf("creating exec process file: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		os.Remove(f.Name())
		return execFiles{}, fmt.Errorf("writing exec process file: %w", err)
	}
	return execFiles{process: f.Name(), pid: f.Name() + ".pid"}, nil
}

func (f execFiles) remove() {
	os.Remove(f.process)
	os.Remove(f.pid)
}

// bundleProcess reads the process section of the bundle's config.json.
func bundleProcess(bundle string) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading bundle config: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("decoding bundle config: %w", err)
	}
	if spec.Process == nil {
		return nil, errors.New("reading bundle config: no process section")
	}
	return spec.Process, nil
}

// execCommand builds `runtime exec` for the prepared files.
func execCommand(h Handler, id string, files execFiles, extra ...string) *exec.Cmd {
	args := append([]string{"exec", "--process", files.process, "--pid-file", files.pid}, extra...)
	cmd := exec.Command(h.RuntimePath, runtimeArgs(h, append(args, id)...)...)
	cmd.WaitDelay = runtimeWaitDelay
	return cmd
}

// ExecSync runs cmd in container id and returns its output (each stream
// capped at MaxExecSyncOutput) and exit code. When timeout (if > 0) passes
// or ctx ends, the process and all its descendants are SIGKILLed and reaped
// before ExecSync returns an ErrTimeout (or ctx) error.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	_, h, err := r.handlerFor(id)
	if err != nil {
		return ExecResult{}, err
	}
	files, err := r.prepareExec(id, cmd, false)
	if err != nil {
		return ExecResult{}, err
	}
	defer files.remove()
	stdout := &cappedBuffer{max: MaxExecSyncOutput}
	stderr := &cappedBuffer{max: MaxExecSyncOutput}
	c := execCommand(h, id, files)
	c.Stdout, c.Stderr = stdout, stderr
	waitErr, err := r.runExec(ctx, c, files.pid, timeout)
	res := ExecResult{Stdout: stdout.buf, Stderr: stderr.buf}
	if err != nil {
		return res, err
	}
	return execOutcome(res, waitErr, files.pid)
}

// execOutcome turns the runtime's exit into a result: a non-zero exit of a
// process that started is its exit code; one that never started is an error.
func execOutcome(res ExecResult, waitErr error, pidFile string) (ExecResult, error) {
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("running exec: %w", waitErr)
	}
	if exitErr != nil {
		if pid, _ := readPidFile(pidFile); pid == 0 {
			return res, fmt.Errorf("starting exec: %s: %w", runtimeMessage(res.Stderr), waitErr)
		}
		res.ExitCode = exitErr.ExitCode()
	}
	return res, nil
}

// runExec starts c and waits for it until timeout or ctx ends; then it kills
// the exec'd process tree and still reaps c. It returns c's wait error, or
// an error when the exec was cut short.
func (r *Runtime) runExec(ctx context.Context, c *exec.Cmd, pidFile string, timeout time.Duration) (waitErr, err error) {
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("starting runtime exec: %w", err)
	}
	return r.waitExec(ctx, c, pidFile, timeout)
}

// waitExec waits for the started c like runExec.
func (r *Runtime) waitExec(ctx context.Context, c *exec.Cmd, pidFile string, timeout time.Duration) (waitErr, err error) {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		return err, nil
	case <-expired:
		r.killExec(c, pidFile)
		<-done
		return nil, fmt.Errorf("exec after %s: %w", timeout, ErrTimeout)
	case <-ctx.Done():
		r.killExec(c, pidFile)
		<-done
		return nil, fmt.Errorf("exec: %w", ctx.Err())
	}
}

// killExec SIGKILLs the exec'd process and its descendants, found through
// the runtime's pid file; without one it kills the runtime process itself.
func (r *Runtime) killExec(c *exec.Cmd, pidFile string) {
	var pid int
	waitUntil(context.Background(), execPidFileWait, func() bool {
		pid, _ = readPidFile(pidFile)
		return pid != 0 || !processAlive(c.Process.Pid)
	})
	if pid == 0 {
		_ = c.Process.Kill()
		return
	}
	killTree(pid)
}

// killTree SIGKILLs pid and every descendant, repeating while new ones
// appear (a dying shell may still fork).
func killTree(pid int) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for range 5 {
		kids := descendants(pid)
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
		if len(kids) == 0 {
			break
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
