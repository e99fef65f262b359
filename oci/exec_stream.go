package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/safe"
)

// ttyDrainTimeout bounds reading pty output after the exec'd process exited.
const ttyDrainTimeout = 2 * time.Second

// ExecOptions describes a streaming exec.
type ExecOptions struct {
	// Cmd is the command and its arguments.
	Cmd []string
	// Tty runs the command on a pseudo-terminal; its output goes to Stdout
	// only (Stderr is unused).
	Tty bool
	// Stdin, if set, is copied to the process until it returns EOF; the
	// caller must make it return (close it) when the stream ends.
	Stdin io.Reader
	// Stdout and Stderr receive the process output; nil discards it.
	Stdout, Stderr io.Writer
	// Resize delivers terminal size changes (Tty only); may be nil.
	Resize <-chan Size
}

// ExecProcess runs opts.Cmd in container id, streaming its input and output,
// and returns its exit code once it exits. When ctx ends the process tree is
// killed and reaped before ExecProcess returns ctx's error.
func (r *Runtime) ExecProcess(ctx context.Context, id string, opts ExecOptions) (int, error) {
	_, h, err := r.handlerFor(id)
	if err != nil {
		return -1, err
	}
	files, err := r.prepareExec(id, opts.Cmd, opts.Tty)
	if err != nil {
		return -1, err
	}
	defer files.remove()
	if opts.Tty {
		return r.execTty(ctx, h, id, files, opts)
	}
	c := execCommand(h, id, files)
	c.Stdout, c.Stderr = opts.Stdout, opts.Stderr
	var stderr cappedBuffer
	if opts.Stderr == nil {
		stderr.max = 64 << 10
		c.Stderr = &stderr
	}
	if err := pipeStdin(c, opts.Stdin); err != nil {
		return -1, err
	}
	waitErr, err := r.runExec(ctx, c, files.pid, 0)
	if err != nil {
		return -1, err
	}
	res, err := execOutcome(ExecResult{Stderr: stderr.buf}, waitErr, files.pid)
	return res.ExitCode, err
}

// pipeStdin feeds stdin to c through a pipe that c's Wait closes once the
// process exited. Given stdin directly, Wait would also wait for its own
// copier, which blocks in stdin's Read: an exec whose process exited
// while the client's stdin stayed open (idle) would never end. The copier
// here ends at stdin's EOF (closing the pipe, so the process sees EOF) or
// at its first read after the process exited; like the tty path's, its
// owner is the caller's stream, which must close stdin.
func pipeStdin(c *exec.Cmd, stdin io.Reader) error {
	if stdin == nil {
		return nil
	}
	w, err := c.StdinPipe()
	if err != nil {
		return fmt.Errorf("creating exec stdin pipe: %w", err)
	}
	go func() {
		_, _ = io.Copy(w, stdin)
		_ = w.Close()
	}()
	return nil
}

// execTty runs the exec with a host pty as the runtime's stdio and
// controlling terminal. The runtime allocates the container's own pty,
// copies between the two, and forwards SIGWINCH (sent by the kernel when
// the host pty is resized) as a resize of the container's pty.
func (r *Runtime) execTty(ctx context.Context, h Handler, id string, files execFiles, opts ExecOptions) (int, error) {
	master, slave, err := openPty()
	if err != nil {
		return -1, err
	}
	defer master.Close()
	c := execCommand(h, id, files)
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = c.Start()
	slave.Close()
	if err != nil {
		return -1, fmt.Errorf("starting runtime exec: %w", err)
	}
	return r.streamTty(ctx, c, files.pid, master, opts)
}

// openPty allocates a host pseudo-terminal pair.
func openPty() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening pty master: %w", err)
	}
	n, err := ptyNumber(master)
	if err == nil {
		slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("opening pty slave: %w", err)
	}
	return master, slave, nil
}

// ptyNumber unlocks the pty master and returns its slave number.
func ptyNumber(master *os.File) (int, error) {
	raw, err := master.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var opErr error
	err = raw.Control(func(fd uintptr) {
		if opErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); opErr != nil {
			return
		}
		n, opErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	})
	return n, errors.Join(err, opErr)
}

// streamTty copies between the pty and the caller while the exec runs.
func (r *Runtime) streamTty(ctx context.Context, c *exec.Cmd, pidFile string, pty *os.File, opts ExecOptions) (int, error) {
	stop := make(chan struct{})
	// A panic in either ends the session with an error.
	var wg sync.WaitGroup
	panics := make(chan error, 2)
	for _, f := range []func(){
		func() { copyOutput(opts.Stdout, pty) },
		func() { applyResizes(pty, opts.Resize, stop) },
	} {
		wg.Go(func() {
			if err := safe.Run(r.log, "exec tty copy", f); err != nil {
				panics <- err
			}
		})
	}
	if opts.Stdin != nil {
		// Ends when Stdin returns EOF or the pty is closed; its owner is
		// the caller's stream, which must close Stdin.
		go func() { _, _ = io.Copy(pty, opts.Stdin) }()
	}
	waitErr, err := r.waitExec(ctx, c, pidFile, 0)
	close(stop)
	// Output still buffered is drained; a background child holding the
	// pty open cannot keep us here.
	_ = pty.SetReadDeadline(time.Now().Add(ttyDrainTimeout))
	wg.Wait()
	close(panics)
	if p := <-panics; p != nil {
		err = errors.Join(err, fmt.Errorf("exec session: %w", p))
	}
	if err != nil {
		return -1, err
	}
	res, err := execOutcome(ExecResult{}, waitErr, pidFile)
	return res.ExitCode, err
}

// copyOutput copies the pty to w until the pty reports EIO (all slave ends
// closed after the process exited).
func copyOutput(w io.Writer, pty *os.File) {
	if w == nil {
		w = io.Discard
	}
	_, _ = io.Copy(w, pty)
}

// applyResizes sets the pty size for each Size received until stop closes.
func applyResizes(pty *os.File, sizes <-chan Size, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case s, ok := <-sizes:
			if !ok {
				return
			}
			setWinsize(pty, s)
		}
	}
}

// setWinsize sets the terminal size of pty (without making it blocking, as
// Fd would).
func setWinsize(pty *os.File, s Size) {
	raw, err := pty.SyscallConn()
	if err != nil {
		return
	}
	ws := &unix.Winsize{Row: s.Height, Col: s.Width}
	_ = raw.Control(func(fd uintptr) { _ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
}
