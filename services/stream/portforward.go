package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsthread"
	"github.com/arbor-cri/arbor/internal/safe"
)

// DialInNetNS connects to port on localhost inside the network namespace
// at netnsPath ("" dials in the daemon's own namespace, for host-network
// pods). It tries 127.0.0.1 first and ::1 if that is refused. The dial runs
// on an OS thread that joins the namespace and is then thrown away, so no
// other goroutine ever runs in the pod's namespace; the returned connection
// stays in it.
func DialInNetNS(ctx context.Context, netnsPath string, port int32) (net.Conn, error) {
	if netnsPath == "" {
		return dialLocalhost(ctx, port)
	}
	// On a thread thrown away after, so the namespace cannot leak to other
	// goroutines (nor to the main thread, which cannot be thrown away).
	var conn net.Conn
	err := nsthread.Run(func() (err error) {
		conn, err = enterAndDial(ctx, netnsPath, port)
		return err
	})
	return conn, err
}

// enterAndDial moves the calling (locked) thread into the namespace at
// path and dials there.
func enterAndDial(ctx context.Context, path string, port int32) (net.Conn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("entering network namespace %s: %w", path, err)
	}
	return dialLocalhost(ctx, port)
}

// dialLocalhost dials 127.0.0.1:port, then [::1]:port if the first is
// refused.
func dialLocalhost(ctx context.Context, port int32) (net.Conn, error) {
	var d net.Dialer
	p := strconv.Itoa(int(port))
	conn, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		return conn, wrapDial(err, port)
	}
	conn, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p))
	if err6 != nil {
		return nil, wrapDial(err, port)
	}
	return conn, nil
}

func wrapDial(err error, port int32) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("dialing localhost port %d: %w", port, err)
}

// forward copies between stream and port in the namespace until the pod
// side ends or ctx ends. The client-to-pod copy may stay blocked reading
// the client's stream after forward returns (the library closes the
// stream only then), so it belongs to the run rather than to this call.
func forward(ctx context.Context, r *run, netns string, port int32, stream io.ReadWriteCloser) error {
	conn, err := DialInNetNS(ctx, netns, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = r.goTracked("port-forward copy", func() {
		_, _ = io.Copy(conn, stream)
		closeWrite(conn)
	})
	if err != nil {
		return err
	}
	copied := make(chan error, 1)
	go func() {
		copied <- safe.Call(func() error {
			_, err := io.Copy(stream, conn)
			return err
		})
	}()
	select {
	case err = <-copied:
	case <-ctx.Done():
		conn.Close()
		<-copied
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("copying from port %d: %w", port, err)
	}
	return nil
}

// closeWrite tells the pod side the client sent everything.
func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
