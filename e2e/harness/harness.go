// Package harness runs the real arbor binary for end-to-end tests and
// benchmarks: on a temporary socket and state folders, with its log kept,
// and with helpers for crictl and `arbor status`. Every test ends with
// Stop, which requires a clean exit 0 on SIGTERM.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/internal/syncbuf"
)

// Bin returns the arbor binary under test: $ARBOR_BIN, or bin/arbor at the
// top of the repository.
func Bin() string { return toolPath("ARBOR_BIN", "arbor") }

// Crictl returns the crictl binary: $CRICTL or bin/crictl.
func Crictl() string { return toolPath("CRICTL", "crictl") }

func toolPath(env, name string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	wd, _ := os.Getwd()
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin", name)
		}
	}
	return name
}

// Options change how the daemon starts.
type Options struct {
	Args       []string // extra flags
	Env        []string // extra environment
	ConfigText string   // written to the main config file
	Dir        string   // state folder to reuse (a restart); empty for a new one
	// LevelFromConfig leaves the log level to the config file; otherwise
	// the daemon runs with --log-level debug.
	LevelFromConfig bool
	// Shared gives the daemon the shared registry and CNI network; without
	// it the daemon has an empty CNI folder of its own.
	Shared *Env
	// Wrap runs the daemon under another command (e.g. unshare, strace):
	// Wrap[0] is executed with Wrap[1:], then the daemon's path and flags.
	Wrap []string
}

// Daemon is one running arbor.
type Daemon struct {
	Dir, Socket, Root, RunRoot, ConfigFile string

	cmd     *exec.Cmd
	wrapped bool // started under a wrapper command
	log     *syncbuf.Buffer
	done    chan struct{}
	err     error // valid after done is closed
}

// Start runs arbor and waits until its socket answers.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	d, err := Launch(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitServing(20 * time.Second); err != nil {
		d.Kill()
		t.Fatalf("%v\n--- daemon log ---\n%s", err, d.Log())
	}
	return d
}

// Launch runs arbor without waiting for it to serve.
func Launch(t testing.TB, opts Options) (*Daemon, error) {
	dir := opts.Dir
	if dir == "" {
		// Short paths: a unix socket path holds at most 107 bytes.
		var err error
		if dir, err = os.MkdirTemp("", "arbor-e2e-"); err != nil {
			return nil, err
		}
		remember(dir)
		t.Cleanup(func() {
			unmountUnder(dir)
			os.RemoveAll(dir)
		})
	}
	d := &Daemon{
		Dir: dir, Socket: filepath.Join(dir, "arbor.sock"), Root: filepath.Join(dir, "root"),
		RunRoot: filepath.Join(dir, "run"), ConfigFile: filepath.Join(dir, "arbor.conf"),
		log: &syncbuf.Buffer{}, done: make(chan struct{}),
	}
	if err := os.WriteFile(d.ConfigFile, []byte(opts.ConfigText), 0o644); err != nil {
		return nil, err
	}
	args := append([]string{
		"--config", d.ConfigFile, "--config-dir", filepath.Join(dir, "conf.d"),
		"--listen", d.Socket, "--root", d.Root, "--runroot", d.RunRoot,
		"--enable-fault-injection",
		// NRI is on by default: each daemon gets its own socket and an
		// empty plugin folder, so tests never meet each other's or the
		// host's plugins.
		"--nri-socket-path", filepath.Join(dir, "nri.sock"),
		"--nri-plugin-dir", filepath.Join(dir, "nri-plugins"),
		"--nri-plugin-config-dir", filepath.Join(dir, "nri-conf"),
	}, opts.Args...)
	if !opts.LevelFromConfig {
		args = append(args, "--log-level", "debug")
	}
	if opts.Shared != nil {
		args = append(args, opts.Shared.Args()...)
	} else {
		args = append(args, "--cni-config-dir", filepath.Join(dir, "cni"))
	}
	d.cmd = exec.Command(Bin(), args...)
	if len(opts.Wrap) > 0 {
		d.cmd = exec.Command(opts.Wrap[0], append(append(opts.Wrap[1:], Bin()), args...)...)
	}
	d.cmd.Env = append(os.Environ(), opts.Env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// A fork of the daemon that outlives it keeps its output pipe open;
	// Wait must still report the daemon's own exit.
	d.cmd.WaitDelay = 2 * time.Second
	// Its own process group, so that Kill reaches a wrapped daemon too.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	d.wrapped = len(opts.Wrap) > 0
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", Bin(), err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.Kill)
	return d, nil
}

// WaitServing polls crictl version until it answers or the daemon exits.
func (d *Daemon) WaitServing(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("daemon exited before serving: %v", d.err)
		default:
		}
		// Ask crictl only once the socket accepts: crictl's gRPC client
		// waits out a reconnect backoff (about half a second) when its
		// first dial finds no socket, which would count as start-up time.
		if conn, err := net.Dial("unix", d.Socket); err == nil {
			conn.Close()
			if _, err := d.Crictl("version"); err == nil {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("daemon did not serve within %s", limit)
}

// Crictl runs crictl against the daemon and returns its standard output;
// an error carries standard error too.
func (d *Daemon) Crictl(args ...string) (string, error) {
	return run(30*time.Second, Crictl(), append([]string{"--timeout", "20s", "-r", "unix://" + d.Socket, "-i", "unix://" + d.Socket}, args...)...)
}

// Arbor runs an arbor subcommand pointed at the daemon's socket.
func (d *Daemon) Arbor(args ...string) (string, error) {
	return run(30*time.Second, Bin(), append([]string{"--config", d.ConfigFile, "--listen", d.Socket}, args...)...)
}

func run(limit time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// Fault arms a fault through the socket's HTTP side.
func (d *Daemon) Fault(target, mode string, count int) error {
	q := url.Values{"target": {target}, "mode": {mode}, "count": {strconv.Itoa(count)}}
	resp, err := d.HTTP().Post("http://arbor/debug/fault?"+q.Encode(), "", nil)
	if err != nil {
		return fmt.Errorf("arming fault: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("arming fault: %s: %s", resp.Status, body)
	}
	return nil
}

// HTTP returns a client for the socket's HTTP side (use host "arbor").
func (d *Daemon) HTTP() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", d.Socket)
		},
	}}
}

// Pid is the daemon's process ID; under a wrapper, the arbor process
// among the wrapper's descendants.
func (d *Daemon) Pid() int {
	if !d.wrapped {
		return d.cmd.Process.Pid
	}
	for _, p := range ProcessesMatching(d.Socket) {
		f := strings.Fields(p)
		if len(f) > 1 && filepath.Base(f[1]) == "arbor" {
			if pid, err := strconv.Atoi(f[0]); err == nil && pid > 1 {
				return pid
			}
		}
	}
	return 0
}

// Log returns everything the daemon printed so far.
func (d *Daemon) Log() string { return d.log.String() }

// WaitLog waits until the log contains s.
func (d *Daemon) WaitLog(s string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if strings.Contains(d.Log(), s) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("log has no %q after %s", s, limit)
}

// Signal sends sig to the daemon (not to a wrapper around it).
func (d *Daemon) Signal(sig syscall.Signal) error {
	if !d.wrapped {
		return d.cmd.Process.Signal(sig)
	}
	pid := d.Pid()
	if pid <= 0 {
		// Never kill(0) or kill(-1): those reach every process.
		return fmt.Errorf("wrapped daemon not found")
	}
	return syscall.Kill(pid, sig)
}

// Wait waits for the daemon to exit and returns its exit code.
func (d *Daemon) Wait(limit time.Duration) (int, error) {
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode(), nil
	case <-time.After(limit):
		return -1, fmt.Errorf("daemon still running after %s", limit)
	}
}

// Exited reports whether the daemon has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and requires exit code 0, the clean-shutdown marker
// and no socket file left behind. It returns how long the stop took.
func (d *Daemon) Stop(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signalling daemon: %v", err)
	}
	code, err := d.Wait(30 * time.Second)
	took := time.Since(start)
	if err != nil || code != 0 {
		t.Fatalf("daemon stop: exit %d, %v\n--- daemon log ---\n%s", code, err, d.Log())
	}
	if _, err := os.Stat(filepath.Join(d.Root, "clean.shutdown")); err != nil {
		t.Errorf("no clean-shutdown marker after SIGTERM: %v", err)
	}
	if _, err := os.Stat(d.Socket); err == nil {
		t.Errorf("socket %s left behind", d.Socket)
	}
	return took
}

// Kill ends the daemon at once (as SIGKILL) if it still runs.
func (d *Daemon) Kill() {
	if d.cmd == nil || d.cmd.Process == nil || d.Exited() {
		return
	}
	if pgid := d.cmd.Process.Pid; pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	<-d.done
}
