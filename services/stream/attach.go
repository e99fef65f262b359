package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/oci"
)

// ConmonRuntime is the part of *oci.Runtime that AttachConmon uses.
type ConmonRuntime interface {
	// AttachSocketPath is conmon's SOCK_SEQPACKET attach socket for id.
	AttachSocketPath(id string) string
	// ResizeTerminal resizes the terminal of container id.
	ResizeTerminal(id string, s oci.Size) error
}

// conmon's attach protocol: every packet conmon sends starts with a byte
// naming its stream; every packet a client sends is container input.
const (
	attachPipeStdout = 2
	attachPipeStderr = 3
	// attachInputChunk matches conmon's read buffer for client packets.
	attachInputChunk = 8192
	// attachOutputMax holds the largest packet conmon sends (8192 + 1).
	attachOutputMax = 32<<10 + 1
)

// AttachConmon connects opts to the process of a conmon-run container
// through its attach socket until the container's output ends (it exited),
// ctx ends, or the client closes stdin of a container that is not
// stdinOnce (a detach, which returns nil). For a stdinOnce container, the
// end of stdin is passed on to conmon and the attach lasts until the
// output ends. Terminal resizes go through rt.ResizeTerminal. It returns
// only after all of its goroutines ended.
func AttachConmon(ctx context.Context, rt ConmonRuntime, log *slog.Logger, id string, stdinOnce bool, opts AttachOptions) error {
	conn, err := dialAttach(ctx, rt.AttachSocketPath(id))
	if err != nil {
		return err
	}
	a := &attachment{conn: conn, rt: rt, log: log, id: id, stop: make(chan struct{})}
	a.start(opts)
	err = a.wait(ctx, stdinOnce)
	a.end(opts.Stdin)
	return err
}

// dialAttach connects to conmon's attach socket at path. The path may be
// longer than a unix socket address holds (107 bytes: a long run root plus
// a 64-character container ID), so the socket's folder is opened and the
// socket reached through /proc/self/fd, as conmon does when it binds it.
func dialAttach(ctx context.Context, path string) (*net.UnixConn, error) {
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening conmon attach socket folder: %w", err)
	}
	defer unix.Close(dir)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", fmt.Sprintf("/proc/self/fd/%d/%s", dir, filepath.Base(path)))
	if err != nil {
		return nil, fmt.Errorf("dialing conmon attach socket %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}

// attachment is one attach session over a conmon socket.
type attachment struct {
	conn *net.UnixConn
	rt   ConmonRuntime
	log  *slog.Logger
	id   string

	wg        sync.WaitGroup
	stop      chan struct{}
	outDone   chan error // nil without output streams
	stdinDone chan error // nil without stdin
}

// start runs the copiers and the resize loop.
func (a *attachment) start(opts AttachOptions) {
	if opts.Stdout != nil || opts.Stderr != nil {
		a.outDone = make(chan error, 1)
		a.wg.Go(func() {
			a.outDone <- safe.Call(func() error { return copyAttachOutput(a.conn, opts.Stdout, opts.Stderr) })
		})
	}
	if opts.Stdin != nil {
		a.stdinDone = make(chan error, 1)
		a.wg.Go(func() { a.stdinDone <- safe.Call(func() error { return copyAttachInput(a.conn, opts.Stdin) }) })
	}
	if opts.Tty && opts.Resize != nil {
		a.wg.Go(func() { _ = safe.Run(a.log, "attach resize", func() { a.resizeLoop(opts.Resize) }) })
	}
}

// wait returns when the session is over.
func (a *attachment) wait(ctx context.Context, stdinOnce bool) error {
	select {
	case err := <-a.outDone:
		return err
	case err := <-a.stdinDone:
		if err != nil || !stdinOnce || a.outDone == nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-a.outDone:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// end releases every goroutine and waits for them.
func (a *attachment) end(stdin io.Closer) {
	close(a.stop)
	_ = a.conn.Close()
	if stdin != nil {
		_ = stdin.Close()
	}
	a.wg.Wait()
}

func (a *attachment) resizeLoop(sizes <-chan oci.Size) {
	for {
		select {
		case <-a.stop:
			return
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			if err := a.rt.ResizeTerminal(a.id, sz); err != nil {
				a.log.Warn("Resizing terminal failed", "container_id", a.id, "error", err)
			}
		}
	}
}

// copyAttachOutput demultiplexes conmon's packets to stdout and stderr
// until the socket ends. A closed socket after the session ended is no
// error.
func copyAttachOutput(conn net.Conn, stdout, stderr io.Writer) error {
	buf := make([]byte, attachOutputMax)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if werr := writePacket(buf[:n], stdout, stderr); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading conmon attach socket: %w", err)
		}
	}
}

func writePacket(p []byte, stdout, stderr io.Writer) error {
	var w io.Writer
	switch p[0] {
	case attachPipeStdout:
		w = stdout
	case attachPipeStderr:
		w = stderr
	}
	if w == nil {
		return nil
	}
	if _, err := w.Write(p[1:]); err != nil {
		return fmt.Errorf("writing attach output: %w", err)
	}
	return nil
}

// copyAttachInput sends stdin to conmon in packets conmon reads whole, and
// shuts the socket's write side at EOF.
func copyAttachInput(conn *net.UnixConn, stdin io.Reader) error {
	buf := make([]byte, attachInputChunk)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return fmt.Errorf("writing conmon attach socket: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			_ = conn.CloseWrite()
			return nil
		}
		if err != nil {
			return nil // stdin released by the session's end
		}
	}
}
