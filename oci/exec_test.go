package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runIdle starts a container whose init reaps orphans and never exits.
func runIdle(t *testing.T, e *env) ctr {
	t.Helper()
	c := e.bundle(t, []string{"sh", "-c", "echo ready; while true; do sleep 1; done"})
	e.run(t, c)
	waitLog(t, c, "ready")
	return c
}

func TestExecSync(t *testing.T) {
	e := newEnv(t)
	c := runIdle(t, e)
	tests := []struct {
		name       string
		cmd        []string
		wantOut    string
		wantErrOut string
		wantCode   int
	}{
		{"echo", []string{"echo", "hi"}, "hi\n", "", 0},
		{"exit code and stderr", []string{"sh", "-c", "echo oops >&2; exit 7"}, "", "oops\n", 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.rt.ExecSync(context.Background(), c.id, tc.cmd, 10*time.Second)
			if err != nil {
				t.Fatalf("ExecSync: %v", err)
			}
			if string(res.Stdout) != tc.wantOut || string(res.Stderr) != tc.wantErrOut || res.ExitCode != tc.wantCode {
				t.Fatalf("got stdout %q stderr %q code %d", res.Stdout, res.Stderr, res.ExitCode)
			}
		})
	}
}

func TestExecSyncOutputCap(t *testing.T) {
	e := newEnv(t)
	c := runIdle(t, e)
	res, err := e.rt.ExecSync(context.Background(), c.id, []string{"head", "-c", "20000000", "/dev/zero"}, 30*time.Second)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("ExecSync = code %d, %v", res.ExitCode, err)
	}
	if len(res.Stdout) != MaxExecSyncOutput {
		t.Fatalf("stdout has %d bytes, want the cap %d", len(res.Stdout), MaxExecSyncOutput)
	}
}

func TestExecSyncTimeoutKillsTree(t *testing.T) {
	tests := []struct {
		name string
		cmd  []string
	}{
		{"single process", []string{"sleep", "1000"}},
		{"process with children", []string{"sh", "-c", "sleep 1000 & sleep 1000 & wait"}},
	}
	e := newEnv(t)
	c := runIdle(t, e)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			returnsWithin(t, time.Minute, func() {
				_, err = e.rt.ExecSync(context.Background(), c.id, tc.cmd, time.Second)
			})
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("ExecSync: %v, want ErrTimeout", err)
			}
			res, err := e.rt.ExecSync(context.Background(), c.id, []string{"ps", "-o", "pid,stat,args"}, 10*time.Second)
			if err != nil {
				t.Fatalf("ps: %v", err)
			}
			if strings.Contains(string(res.Stdout), "sleep 1000") {
				t.Fatalf("exec'd processes survived the timeout:\n%s", res.Stdout)
			}
		})
	}
}

// returnsWithin fails the test when f has not returned after limit: the
// calls it wraps promise to be bounded.
func returnsWithin(t *testing.T, limit time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("call still blocked after %s", limit)
	}
}

func TestExecUnknownContainer(t *testing.T) {
	e := newEnv(t)
	if _, err := e.rt.ExecSync(context.Background(), "nosuch", []string{"true"}, time.Second); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ExecSync: %v, want ErrNotFound", err)
	}
}

func TestExecProcess(t *testing.T) {
	e := newEnv(t)
	c := runIdle(t, e)
	tests := []struct {
		name     string
		opts     ExecOptions
		wantOut  string
		wantCode int
	}{
		{"stdin to stdout", ExecOptions{Cmd: []string{"cat"}, Stdin: strings.NewReader("abc")}, "abc", 0},
		{"exit code", ExecOptions{Cmd: []string{"sh", "-c", "exit 4"}}, "", 4},
		{"tty", ExecOptions{Cmd: []string{"tty"}, Tty: true}, "/dev/pts/", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			tc.opts.Stdout = &out
			code, err := e.rt.ExecProcess(context.Background(), c.id, tc.opts)
			if err != nil {
				t.Fatalf("ExecProcess: %v", err)
			}
			if code != tc.wantCode || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("got code %d output %q", code, out.String())
			}
		})
	}
}

// TestExecProcessIdleStdin runs a command that exits while the caller's
// stdin stays open with nothing to read: the exec must end with the
// process, not with the client's stdin.
func TestExecProcessIdleStdin(t *testing.T) {
	e := newEnv(t)
	c := runIdle(t, e)
	for _, want := range []int{0, 4} {
		t.Run(fmt.Sprintf("exit %d", want), func(t *testing.T) {
			stdin, client := io.Pipe()
			defer client.Close()
			defer stdin.Close() // the caller's duty: it releases the copier
			var out bytes.Buffer
			var code int
			var err error
			returnsWithin(t, 30*time.Second, func() {
				code, err = e.rt.ExecProcess(context.Background(), c.id, ExecOptions{
					Cmd: []string{"sh", "-c", fmt.Sprintf("echo hi; exit %d", want)}, Stdin: stdin, Stdout: &out,
				})
			})
			if err != nil || code != want || out.String() != "hi\n" {
				t.Fatalf("ExecProcess = %d, %v, output %q", code, err, out.String())
			}
		})
	}
}

func TestExecProcessTtyResize(t *testing.T) {
	e := newEnv(t)
	c := runIdle(t, e)
	sizes := make(chan Size, 1)
	sizes <- Size{Width: 100, Height: 40}
	var out bytes.Buffer
	// The first resize may land after the command starts, so the command
	// polls (for up to about 10 s) until the terminal has the new size.
	script := `i=0; while [ "$(stty size)" != "40 100" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; stty size`
	code, err := e.rt.ExecProcess(context.Background(), c.id, ExecOptions{
		Cmd: []string{"sh", "-c", script}, Tty: true, Stdout: &out, Resize: sizes,
	})
	if err != nil || code != 0 {
		t.Fatalf("ExecProcess = %d, %v", code, err)
	}
	if !strings.Contains(out.String(), "40 100") {
		t.Fatalf("stty size printed %q, want 40 100", out.String())
	}
}

func TestAttachStdin(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"sh", "-c", "read x; echo got $x; sleep 1000"})
	opts := c.opts()
	opts.Stdin = true
	if _, err := e.rt.Create(context.Background(), opts); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := e.rt.Start(context.Background(), c.id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	conn, err := net.Dial("unixpacket", e.rt.AttachSocketPath(c.id))
	if err != nil {
		t.Fatalf("dialing attach socket: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 8192)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("reading attach socket: %v", err)
	}
	const stdoutPipe = 2 // conmon prefixes each packet with its stream
	if buf[0] != stdoutPipe || string(buf[1:n]) != "got hi\n" {
		t.Fatalf("attach packet %q", buf[:n])
	}
	assertCRILogLine(t, waitLog(t, c, "got hi"), "stdout", "got hi")
	if err := e.rt.Stop(context.Background(), c.id, syscall.SIGKILL, 0); err != nil {
		t.Fatal(err)
	}
}
