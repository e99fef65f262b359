package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/arbor-cri/arbor/internal/syncbuf"
	"github.com/arbor-cri/arbor/oci"
)

// echoExec is a fake exec: "cat" copies stdin to stdout, "err" writes to
// stderr, "exit N" exits with N, "size" prints the first terminal size,
// "fail" fails to run.
func echoExec(_ context.Context, _ string, opts oci.ExecOptions) (int, error) {
	switch opts.Cmd[0] {
	case "cat":
		_, err := io.Copy(opts.Stdout, opts.Stdin)
		return 0, err
	case "err":
		_, err := io.WriteString(opts.Stderr, "to stderr")
		return 0, err
	case "exit":
		var code int
		_, err := fmt.Sscan(opts.Cmd[1], &code)
		return code, err
	case "size":
		sz := <-opts.Resize
		_, err := fmt.Fprintf(opts.Stdout, "%dx%d", sz.Height, sz.Width)
		return 0, err
	}
	return -1, errFake
}

func TestExecEndToEnd(t *testing.T) {
	b := runningBackend()
	b.exec = echoExec
	s := startService(t, Config{}, b)
	tests := []struct {
		name               string
		req                *runtimeapi.ExecRequest
		stdin              string
		size               *remotecommand.TerminalSize
		wantOut, wantErr   string
		wantCode           int
		wantFailureMessage string
	}{
		{name: "stdin to stdout", req: &runtimeapi.ExecRequest{Cmd: []string{"cat"}, Stdin: true, Stdout: true}, stdin: "hello\nworld\n", wantOut: "hello\nworld\n"},
		{name: "stderr", req: &runtimeapi.ExecRequest{Cmd: []string{"err"}, Stdout: true, Stderr: true}, wantErr: "to stderr"},
		{name: "exit code", req: &runtimeapi.ExecRequest{Cmd: []string{"exit", "3"}, Stdout: true}, wantCode: 3},
		{name: "tty resize", req: &runtimeapi.ExecRequest{Cmd: []string{"size"}, Stdin: true, Stdout: true, Tty: true}, size: &remotecommand.TerminalSize{Width: 100, Height: 40}, wantOut: "40x100"},
		{name: "backend failure", req: &runtimeapi.ExecRequest{Cmd: []string{"fail"}, Stdout: true}, wantFailureMessage: errFake.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.ContainerId = "c1"
			resp, err := s.svc.GetExec(tc.req)
			if err != nil {
				t.Fatalf("GetExec: %v", err)
			}
			var out, errOut syncbuf.Buffer
			opts := remotecommand.StreamOptions{Tty: tc.req.Tty, Stdout: &out}
			if tc.req.Stdin {
				opts.Stdin = strings.NewReader(tc.stdin)
			}
			if tc.req.Stderr {
				opts.Stderr = &errOut
			}
			if tc.size != nil {
				opts.TerminalSizeQueue = &oneSize{size: tc.size}
			}
			err = stream(context.Background(), t, nil, resp.Url, opts)
			assertExecOutcome(t, err, tc.wantCode, tc.wantFailureMessage)
			if out.String() != tc.wantOut || errOut.String() != tc.wantErr {
				t.Fatalf("stdout %q stderr %q, want %q and %q", out.String(), errOut.String(), tc.wantOut, tc.wantErr)
			}
		})
	}
}

// assertExecOutcome checks the client saw the exit code, or the failure.
func assertExecOutcome(t *testing.T, err error, wantCode int, wantMessage string) {
	t.Helper()
	switch {
	case wantMessage != "":
		if err == nil || !strings.Contains(err.Error(), wantMessage) {
			t.Fatalf("stream error %v, want one containing %q", err, wantMessage)
		}
	case wantCode != 0:
		var exitErr utilexec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitStatus() != wantCode {
			t.Fatalf("stream error %v, want exit code %d", err, wantCode)
		}
	case err != nil:
		t.Fatalf("stream: %v", err)
	}
}

// TestServeCancelClosesSessions cancels Serve while an exec session waits
// for input that never comes. A backend that watches its context returns
// and the client hears why; one that only reads stdin is released when the
// service closes the hijacked connection after the grace period. Either
// way the client's stream ends, Serve returns, and (TestMain) no goroutine
// is left.
func TestServeCancelClosesSessions(t *testing.T) {
	tests := []struct {
		name    string
		exec    func(ctx context.Context, opts oci.ExecOptions) (int, error)
		wantErr string // in the client's error; "" for any outcome
	}{
		{"backend watches context", func(ctx context.Context, _ oci.ExecOptions) (int, error) {
			<-ctx.Done()
			return -1, ctx.Err()
		}, "context canceled"},
		{"backend reads stdin only", func(_ context.Context, opts oci.ExecOptions) (int, error) {
			_, err := io.Copy(opts.Stdout, opts.Stdin)
			return 0, err
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertCancelEndsSession(t, tc.exec, tc.wantErr)
		})
	}
}

func assertCancelEndsSession(t *testing.T, exec func(context.Context, oci.ExecOptions) (int, error), wantErr string) {
	started := make(chan struct{})
	returned := make(chan struct{})
	b := runningBackend()
	b.exec = func(ctx context.Context, _ string, opts oci.ExecOptions) (int, error) {
		close(started)
		defer close(returned)
		return exec(ctx, opts)
	}
	s := startService(t, Config{}, b)
	resp, err := s.svc.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"wait"}, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe() // a terminal that never types
	defer stdinW.Close()
	clientDone := make(chan error, 1)
	go func() {
		clientDone <- stream(context.Background(), t, nil, resp.Url, remotecommand.StreamOptions{Stdin: stdinR, Stdout: io.Discard})
	}()
	<-started
	s.stop(t)
	select {
	case <-returned:
	default:
		t.Fatal("Serve returned before the backend call")
	}
	select {
	case err := <-clientDone:
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("client stream ended with %v, want %q", err, wantErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("client stream still open after Serve returned")
	}
}

// TestRestartKeepsURLs restarts the service: the port stays and a URL
// handed out before the restart works after it.
func TestRestartKeepsURLs(t *testing.T) {
	b := runningBackend()
	b.exec = echoExec
	s := startService(t, Config{}, b)
	addr := s.svc.Address()
	resp, err := s.svc.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"exit", "7"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	s.stop(t)
	if _, err := s.svc.activeRun(); err == nil {
		t.Fatal("service still has a run after Serve returned")
	}
	s.start(t)
	if s.svc.Address() != addr {
		t.Fatalf("address changed from %s to %s", addr, s.svc.Address())
	}
	err = stream(context.Background(), t, nil, resp.Url, remotecommand.StreamOptions{Stdout: io.Discard})
	assertExecOutcome(t, err, 7, "")
}

// TestServeFailsOnBusyPort shows a listen failure is returned, not hidden.
func TestServeFailsOnBusyPort(t *testing.T) {
	s := startService(t, Config{}, runningBackend())
	other, err := New(Config{Address: s.svc.Address()}, runningBackend(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	err = other.Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listening for streams") {
		t.Fatalf("Serve on a busy port returned %v", err)
	}
}
