package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podNetNS is a network namespace made for a test, bind-mounted at path,
// with an echo server on 127.0.0.1:port inside it.
type podNetNS struct {
	path     string
	port     int32
	accepted chan struct{} // one value per accepted connection
}

// newPodNetNS creates the namespace on a thread that is then discarded,
// starts the echo server and removes both when the test ends.
func newPodNetNS(t *testing.T) podNetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root")
	}
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	type result struct {
		ln  net.Listener
		err error
	}
	made := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		ln, err := enterNewNetNS(path)
		made <- result{ln, err}
	}()
	res := <-made
	if res.err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		t.Fatalf("creating network namespace: %v", res.err)
	}
	accepted := make(chan struct{}, 16)
	var wg sync.WaitGroup
	wg.Go(func() { serveEcho(res.ln, accepted) })
	t.Cleanup(func() {
		res.ln.Close()
		wg.Wait()
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting netns: %v", err)
		}
	})
	return podNetNS{path: path, port: int32(res.ln.Addr().(*net.TCPAddr).Port), accepted: accepted}
}

// enterNewNetNS moves the calling thread into a new network namespace,
// pins it at path, brings lo up and listens there.
func enterNewNetNS(path string) (net.Listener, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("bind mount: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return nil, err
	}
	return net.Listen("tcp4", "127.0.0.1:0")
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

// serveEcho answers each connection with "echo:" and what it read until
// the client's EOF. It reports each connection on accepted if there is
// room.
func serveEcho(ln net.Listener, accepted chan<- struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		select {
		case accepted <- struct{}{}:
		default:
		}
		wg.Go(func() {
			defer c.Close()
			data, _ := io.ReadAll(c)
			_, _ = c.Write(append([]byte("echo:"), data...))
		})
	}
}

// roundTrip sends msg to addr, half-closes and returns the reply.
func roundTrip(t *testing.T, conn net.Conn, msg string) string {
	t.Helper()
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatalf("writing: %v", err)
	}
	closeWrite(conn)
	reply, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return string(reply)
}

func TestDialInNetNS(t *testing.T) {
	ns := newPodNetNS(t)
	// A host listener on another port: reachable from the host namespace
	// only, so the dial must not find it inside the pod.
	host, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	hostPort := int32(host.Addr().(*net.TCPAddr).Port)
	go func() {
		if c, err := host.Accept(); err == nil {
			c.Close()
		}
	}()

	conn, err := DialInNetNS(context.Background(), ns.path, ns.port)
	if err != nil {
		t.Fatalf("DialInNetNS pod port: %v", err)
	}
	if got := roundTrip(t, conn, "ping"); got != "echo:ping" {
		t.Fatalf("reply %q", got)
	}
	if _, err := DialInNetNS(context.Background(), ns.path, hostPort); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing the host's port inside the pod: %v, want connection refused", err)
	}
	conn, err = DialInNetNS(context.Background(), "", hostPort)
	if err != nil {
		t.Fatalf("dialing the host's port with no namespace: %v", err)
	}
	conn.Close()
	if _, err := DialInNetNS(context.Background(), filepath.Join(t.TempDir(), "missing"), ns.port); err == nil {
		t.Fatal("dialing through a missing namespace path succeeded")
	}
}

// TestPortForwardEndToEnd forwards a local port with the kubelet's
// port-forward client to the echo server inside a pod's namespace.
func TestPortForwardEndToEnd(t *testing.T) {
	ns := newPodNetNS(t)
	b := runningBackend()
	b.pods["pod"] = ns.path
	s := startService(t, Config{}, b)
	resp, err := s.svc.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "pod", Port: []int32{ns.port}})
	if err != nil {
		t.Fatalf("GetPortForward: %v", err)
	}
	local, stop := forwardPort(t, resp.Url, ns.port)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("ForwardPorts: %v", err)
		}
	}()
	for i := range 3 {
		conn, err := net.Dial("tcp4", local)
		if err != nil {
			t.Fatal(err)
		}
		msg := "hello " + strconv.Itoa(i)
		if got := roundTrip(t, conn, msg); got != "echo:"+msg {
			t.Fatalf("connection %d: reply %q", i, got)
		}
	}
}

// forwardPort runs the kubelet's port-forward client for rawURL and
// returns the local address that reaches podPort, and a function that
// stops the client and returns ForwardPorts' error.
func forwardPort(t *testing.T, rawURL string, podPort int32) (string, func() error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stopCh, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", podPort)}, stopCh, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("ForwardPorts: %v", err)
	}
	ports, err := pf.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	stop := func() error {
		close(stopCh)
		return <-done
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))), stop
}

// TestServeCancelClosesPortForward stops the service while a forwarded
// connection is open: the client's connection ends without a reply,
// Serve returns and (TestMain) no goroutine is left.
func TestServeCancelClosesPortForward(t *testing.T) {
	ns := newPodNetNS(t)
	b := runningBackend()
	b.pods["pod"] = ns.path
	s := startService(t, Config{}, b)
	resp, err := s.svc.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "pod", Port: []int32{ns.port}})
	if err != nil {
		t.Fatalf("GetPortForward: %v", err)
	}
	local, stop := forwardPort(t, resp.Url, ns.port)
	defer func() { _ = stop() }() // the client reports the lost connection
	conn, err := net.Dial("tcp4", local)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("open")); err != nil {
		t.Fatal(err)
	}
	<-ns.accepted
	s.stop(t)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	data, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) || len(data) != 0 {
		t.Fatalf("forwarded connection after stop: read %q, %v", data, err)
	}
}
