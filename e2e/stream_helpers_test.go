package e2e

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/harness"
	"github.com/arbor-cri/arbor/internal/syncbuf"
)

// sessionLimit bounds every wait on a crictl streaming session.
const sessionLimit = 20 * time.Second

// session is a long-running crictl process (exec, attach, port-forward)
// the test drives: its output is collected, and it is killed and reaped
// when the test ends if it still runs.
type session struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{} // closed once cmd has exited and its output is read
	err  error         // cmd's wait error, valid after done
}

// crictlSession builds crictl against the daemon; the caller sets stdin or
// a terminal before start.
func crictlSession(t *testing.T, d *harness.Daemon, args ...string) *session {
	global := []string{"--timeout", "20s", "-r", "unix://" + d.Socket, "-i", "unix://" + d.Socket}
	return &session{
		t:    t,
		cmd:  exec.Command(harness.Crictl(), append(global, args...)...),
		out:  &syncbuf.Buffer{},
		done: make(chan struct{}),
	}
}

// start runs the process with stdout and stderr collected, unless they
// were set already (a terminal); extra readers (a pty master) are drained
// into the same buffer and owned by the session.
func (s *session) start(extra ...io.Reader) {
	s.t.Helper()
	if s.cmd.Stdout == nil {
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting crictl: %v", err)
	}
	var readers sync.WaitGroup
	for _, r := range extra {
		readers.Go(func() { _, _ = io.Copy(s.out, r) })
	}
	go func() {
		s.err = s.cmd.Wait()
		readers.Wait()
		close(s.done)
	}()
	s.t.Cleanup(s.kill)
}

// kill ends a session that still runs and waits for it.
func (s *session) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// waitOutput waits until the output contains want.
func (s *session) waitOutput(want string) {
	s.t.Helper()
	if !waitUntil(sessionLimit, func() bool { return strings.Contains(s.out.String(), want) }) {
		s.t.Fatalf("crictl output has no %q after %s:\n%s", want, sessionLimit, s.out.String())
	}
}

// wait waits for the process to exit and returns its exit code.
func (s *session) wait() int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(sessionLimit):
		s.t.Fatalf("crictl still runs after %s:\n%s", sessionLimit, s.out.String())
	}
	var exitErr *exec.ExitError
	if s.err != nil && !errors.As(s.err, &exitErr) {
		s.t.Fatalf("waiting for crictl: %v", s.err)
	}
	return s.cmd.ProcessState.ExitCode()
}

// openPty allocates a pseudo-terminal pair through /dev/ptmx; both ends
// close with the test.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var n int
	err = ptyControl(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlocking pty: %w", err)
		}
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening pty slave: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// setPtySize sets the terminal size of a pty (either end); the kernel
// sends SIGWINCH to the terminal's foreground process group.
func setPtySize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	err := ptyControl(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	if err != nil {
		t.Fatalf("setting pty size: %v", err)
	}
}

func ptyControl(f *os.File, op func(fd int) error) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := raw.Control(func(fd uintptr) { opErr = op(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

// onTerminal makes the session run on the pty's slave end as its
// controlling terminal, in a session of its own.
func (s *session) onTerminal(slave *os.File) {
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = slave, slave, slave
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
}

// sleeper starts a pod with a busybox container that sleeps, for exec.
func (pt *podTest) sleeper(name string) (podID, ctrID string) {
	pt.t.Helper()
	pod := pt.podConfig(name)
	podID = pt.runPod(pod)
	return podID, pt.createAndStart(podID, pod, pt.ctrConfig("sleeper", "sleep 3600"))
}

// processesIn lists the processes in a container as `ps -o pid,args`
// lines, without the ps itself.
func (pt *podTest) processesIn(id string) []string {
	pt.t.Helper()
	var out []string
	for _, line := range strings.Split(pt.exec(id, "ps", "-o", "pid,args"), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] != "PID" && !strings.HasPrefix(f[1], "ps") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// hostExecs lists host processes of the test's daemon that belong to a
// stream: crictl clients and `runc exec` into container id.
func hostExecs(d *harness.Daemon, id string) []string {
	var out []string
	for _, p := range harness.ProcessesMatching(d.Dir) {
		if strings.Contains(p, harness.Crictl()) || strings.Contains(p, " exec ") {
			out = append(out, p)
		}
	}
	for _, p := range harness.ProcessesMatching(id) {
		if strings.Contains(p, "runc") && strings.Contains(p, " exec ") && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// runcRoot is the state folder of the daemon's runc.
func runcRoot(t *testing.T, d *harness.Daemon) string {
	t.Helper()
	root := filepath.Join(d.RunRoot, "oci", ".runtime", "runc")
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("runc root of the daemon: %v", err)
	}
	return root
}

// stdinConfig is a container that reads one line of its stdin, for attach.
func (pt *podTest) stdinConfig(name, script string) *runtimeapi.ContainerConfig {
	cfg := pt.ctrConfig(name, script)
	cfg.Stdin, cfg.StdinOnce = true, true
	return cfg
}
