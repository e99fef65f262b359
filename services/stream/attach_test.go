package stream

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/syncbuf"
	"github.com/arbor-cri/arbor/oci"
)

// fakeConmon serves conmon's attach protocol on a SOCK_SEQPACKET socket:
// each accepted connection is handed to script.
type fakeConmon struct {
	path    string
	resized chan oci.Size
}

func (f *fakeConmon) AttachSocketPath(string) string { return f.path }

func (f *fakeConmon) ResizeTerminal(_ string, s oci.Size) error {
	f.resized <- s
	return nil
}

func newFakeConmon(t *testing.T, script func(*net.UnixConn)) *fakeConmon {
	t.Helper()
	f := &fakeConmon{path: filepath.Join(t.TempDir(), "attach"), resized: make(chan oci.Size, 4)}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: f.path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				script(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return f
}

// echoScript sends one stdout and one stderr packet, then echoes every
// input packet as stdout until the client's EOF, and hangs up (as conmon
// does when the container exits after its stdin closed).
func echoScript(c *net.UnixConn) {
	_, _ = c.Write(append([]byte{attachPipeStdout}, "out;"...))
	_, _ = c.Write(append([]byte{attachPipeStderr}, "err;"...))
	buf := make([]byte, attachOutputMax)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		_, _ = c.Write(append([]byte{attachPipeStdout}, buf[:n]...))
	}
}

// holdScript records input packet sizes and the client's EOF. With
// linger set it keeps the connection open after that EOF until linger is
// closed, as conmon does while the container still runs.
type holdScript struct {
	accepted chan struct{}
	packets  chan int
	eof      chan struct{}
	linger   chan struct{}
}

func newHoldScript() *holdScript {
	return &holdScript{accepted: make(chan struct{}), packets: make(chan int, 64), eof: make(chan struct{})}
}

func (h *holdScript) run(c *net.UnixConn) {
	close(h.accepted)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			h.packets <- n
		}
		if err != nil {
			close(h.eof)
			if h.linger != nil {
				<-h.linger
			}
			return
		}
	}
}

func TestAttachConmonEchoStdinOnce(t *testing.T) {
	f := newFakeConmon(t, echoScript)
	var out, errOut syncbuf.Buffer
	opts := AttachOptions{Stdin: io.NopCloser(strings.NewReader("hi")), Stdout: &out, Stderr: &errOut}
	if err := AttachConmon(context.Background(), f, testLog(), "c1", true, opts); err != nil {
		t.Fatalf("AttachConmon: %v", err)
	}
	if out.String() != "out;hi" || errOut.String() != "err;" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestAttachConmonDetachAndCancel(t *testing.T) {
	tests := []struct {
		name      string
		stdinOnce bool
		stdin     io.ReadCloser
		cancel    bool
		wantErr   error
	}{
		{name: "stdin end detaches", stdin: io.NopCloser(strings.NewReader("bye")), wantErr: nil},
		{name: "cancel ends output-only attach", cancel: true, wantErr: context.Canceled},
		{name: "cancel ends stdin-once attach", stdinOnce: true, stdin: io.NopCloser(strings.NewReader("x")), cancel: true, wantErr: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHoldScript()
			if tc.stdinOnce {
				// Only the cancel may end this attach, not a hang-up.
				h.linger = make(chan struct{})
				defer close(h.linger)
			}
			f := newFakeConmon(t, h.run)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				go func() {
					<-h.accepted
					cancel()
				}()
			}
			opts := AttachOptions{Stdin: tc.stdin, Stdout: io.Discard}
			err := AttachConmon(ctx, f, testLog(), "c1", tc.stdinOnce, opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("AttachConmon = %v, want %v", err, tc.wantErr)
			}
			<-h.eof // the connection was shut or closed, not left open
		})
	}
}

func TestAttachConmonInputPackets(t *testing.T) {
	h := newHoldScript()
	f := newFakeConmon(t, h.run)
	input := strings.Repeat("a", 20000)
	opts := AttachOptions{Stdin: io.NopCloser(strings.NewReader(input))}
	if err := AttachConmon(context.Background(), f, testLog(), "c1", false, opts); err != nil {
		t.Fatalf("AttachConmon: %v", err)
	}
	<-h.eof
	close(h.packets)
	total := 0
	for n := range h.packets {
		if n > attachInputChunk {
			t.Fatalf("packet of %d bytes is larger than conmon reads", n)
		}
		total += n
	}
	if total != len(input) {
		t.Fatalf("conmon got %d bytes, want %d", total, len(input))
	}
}

func TestAttachConmonResize(t *testing.T) {
	h := newHoldScript()
	f := newFakeConmon(t, h.run)
	sizes := make(chan oci.Size, 1)
	sizes <- oci.Size{Width: 120, Height: 30}
	stdinR, stdinW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- AttachConmon(context.Background(), f, testLog(), "c1", false, AttachOptions{Stdin: stdinR, Tty: true, Resize: sizes})
	}()
	if got := <-f.resized; got != (oci.Size{Width: 120, Height: 30}) {
		t.Fatalf("resized to %+v", got)
	}
	stdinW.Close()
	if err := <-done; err != nil {
		t.Fatalf("AttachConmon: %v", err)
	}
}

// TestAttachEndToEnd attaches with the kubelet's client through the
// service to a fake conmon socket.
func TestAttachEndToEnd(t *testing.T) {
	f := newFakeConmon(t, echoScript)
	b := runningBackend()
	b.attach = func(ctx context.Context, id string, opts AttachOptions) error {
		return AttachConmon(ctx, f, testLog(), id, true, opts)
	}
	s := startService(t, Config{}, b)
	resp, err := s.svc.GetAttach(&runtimeapi.AttachRequest{ContainerId: "c1", Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("GetAttach: %v", err)
	}
	var out, errOut syncbuf.Buffer
	err = stream(context.Background(), t, nil, resp.Url, remotecommand.StreamOptions{
		Stdin: strings.NewReader("typed"), Stdout: &out, Stderr: &errOut,
	})
	if err != nil {
		t.Fatalf("attach stream: %v", err)
	}
	if out.String() != "out;typed" || errOut.String() != "err;" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

// TestAttachConmonLongSocketPath reaches the socket through a path longer
// than a unix socket address holds, as under a long run root with a
// 64-character container ID.
func TestAttachConmonLongSocketPath(t *testing.T) {
	f := newFakeConmon(t, echoScript)
	link := filepath.Join(t.TempDir(), strings.Repeat("a", 64), strings.Repeat("b", 64))
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(f.path), link); err != nil {
		t.Fatal(err)
	}
	long := &fakeConmon{path: filepath.Join(link, "attach"), resized: f.resized}
	if len(long.path) < 108 {
		t.Fatalf("path %s is not longer than a socket address", long.path)
	}
	var out syncbuf.Buffer
	opts := AttachOptions{Stdin: io.NopCloser(strings.NewReader("hi")), Stdout: &out}
	if err := AttachConmon(context.Background(), long, testLog(), "c1", true, opts); err != nil {
		t.Fatalf("AttachConmon: %v", err)
	}
	if got := out.String(); got != "out;hi" {
		t.Errorf("stdout %q, want %q", got, "out;hi")
	}
}
