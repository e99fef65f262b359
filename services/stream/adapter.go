package stream

import (
	"context"
	"fmt"
	"io"

	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/arbor-cri/arbor/oci"
)

// adapter is the streaming.Runtime the library calls once a client opened
// its streams. Each call runs as a session of the serving run, so it ends
// with the run, and its helper goroutines belong to the run.
type adapter struct {
	s *Service
}

var _ streaming.Runtime = (*adapter)(nil)

// session starts a tracked session for one library call.
func (a *adapter) session(ctx context.Context) (*run, context.Context, func(), error) {
	r, err := a.s.activeRun()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, done, err := r.begin(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return r, ctx, done, nil
}

// Exec runs cmd in the container through the backend. A non-zero exit code
// is returned as a utilexec.CodeExitError, which the library reports to
// the client as the command's exit code.
func (a *adapter) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	r, ctx, done, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	opts := oci.ExecOptions{Cmd: cmd, Tty: tty, Stdout: writerOrNil(out), Stderr: writerOrNil(errw)}
	stdin, err := pipeStdin(r, in)
	if err != nil {
		return err
	}
	if stdin != nil {
		defer stdin.Close()
		opts.Stdin = stdin
	}
	if opts.Resize, err = sizes(ctx, r, resize); err != nil {
		return err
	}
	a.s.log.Debug("Exec session started", "container_id", id, "tty", tty)
	code, err := a.s.backend.ExecIn(ctx, id, opts)
	if err != nil {
		a.s.log.Warn("Exec session failed", "container_id", id, "error", err)
		return fmt.Errorf("exec in container %s: %w", id, err)
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command exited with code %d", code), Code: code}
	}
	return nil
}

// Attach connects the client's streams to the container's process.
func (a *adapter) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	r, ctx, done, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	opts := AttachOptions{Tty: tty, Stdout: writerOrNil(out), Stderr: writerOrNil(errw)}
	if opts.Stdin, err = pipeStdin(r, in); err != nil {
		return err
	}
	if opts.Stdin != nil {
		defer opts.Stdin.Close()
	}
	if opts.Resize, err = sizes(ctx, r, resize); err != nil {
		return err
	}
	a.s.log.Debug("Attach session started", "container_id", id, "tty", tty)
	if err := a.s.backend.AttachTo(ctx, id, opts); err != nil {
		a.s.log.Warn("Attach session failed", "container_id", id, "error", err)
		return fmt.Errorf("attaching to container %s: %w", id, err)
	}
	return nil
}

// PortForward connects stream to port on localhost in the pod's network
// namespace. The library calls it with a background context, so the
// session's context comes from the run alone.
func (a *adapter) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	r, ctx, done, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := validPort(port); err != nil {
		return err
	}
	netns, err := a.s.backend.PodNetNS(podID)
	if err != nil {
		return fmt.Errorf("looking up pod %s: %w", podID, err)
	}
	a.s.log.Debug("Port forward started", "pod_sandbox_id", podID, "port", port)
	if err := forward(ctx, r, netns, port, stream); err != nil {
		a.s.log.Warn("Port forward failed", "pod_sandbox_id", podID, "port", port, "error", err)
		return err
	}
	return nil
}

// writerOrNil keeps a nil stream nil as an io.Writer.
func writerOrNil(w io.WriteCloser) io.Writer {
	if w == nil {
		return nil
	}
	return w
}
