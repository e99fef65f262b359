package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestExecSyncCrictl runs `crictl exec -s`: output and exit code come back,
// and a command that outlives --timeout is killed and reaped before the
// call returns.
func TestExecSyncCrictl(t *testing.T) {
	pt := newPodTest(t)
	_, id := pt.sleeper("execsync")

	out := crictl(t, pt.d, "exec", "-s", id, "sh", "-c", "echo hello from $(hostname)")
	if !strings.Contains(out, "hello from execsync") {
		t.Errorf("exec -s output %q", out)
	}
	// crictl turns any non-zero exit into its own exit 1 and names the
	// code in its message; the raw call shows the code itself.
	out, err := pt.d.Crictl("exec", "-s", id, "sh", "-c", "echo oops >&2; exit 5")
	if err == nil || !strings.Contains(out, "exited with 5") || !strings.Contains(out, "oops") {
		t.Errorf("exec -s of exit 5: %v\n%s", err, out)
	}
	resp, err := pt.cri.ExecSync(pt.ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 5"}, Timeout: 10})
	if err != nil || resp.GetExitCode() != 5 || string(resp.GetStdout()) != "out\n" || string(resp.GetStderr()) != "err\n" {
		t.Errorf("ExecSync exit 5: %v %d %q %q", err, resp.GetExitCode(), resp.GetStdout(), resp.GetStderr())
	}

	start := time.Now()
	out, err = pt.d.Crictl("exec", "-s", "--timeout", "1", id, "sleep", "30")
	took := time.Since(start)
	if err == nil || !strings.Contains(out, "timed out") {
		t.Errorf("exec -s --timeout 1 of sleep 30 must time out: %v\n%s", err, out)
	}
	// Checked at once: the product kills and reaps before it answers.
	if procs := pt.processesIn(id); slices.ContainsFunc(procs, func(p string) bool { return strings.Contains(p, "sleep 30") }) {
		t.Errorf("sleep 30 still runs after the timeout: %v", procs)
	}
	t.Logf("exec -s --timeout 1 of sleep 30 returned after %s", took.Round(time.Millisecond))
	pt.finish()
}

// TestExecInteractiveIdleStdin runs `crictl exec -i` of commands that exit
// while crictl's stdin stays open and idle: the session ends with the
// command and reports its exit, without waiting for stdin.
func TestExecInteractiveIdleStdin(t *testing.T) {
	pt := newPodTest(t)
	_, id := pt.sleeper("idlestdin")
	cases := []struct {
		script string
		ok     bool
		want   string
	}{
		{"echo hi; exit 0", true, "hi"},
		{"echo hi; exit 4", false, "exit code 4"},
	}
	for _, tc := range cases {
		t.Run(tc.script, func(t *testing.T) {
			s := crictlSession(t, pt.d, "exec", "-i", id, "sh", "-c", tc.script)
			stdin, err := s.cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			s.start()
			code := s.wait()
			if out := s.out.String(); (code == 0) != tc.ok || !strings.Contains(out, tc.want) {
				t.Errorf("crictl exit %d, output:\n%s", code, out)
			}
		})
	}
	if left := hostExecs(pt.d, id); len(left) > 0 {
		t.Errorf("exec processes left on the host: %v", left)
	}
	pt.finish()
}

// TestExecTty drives `crictl exec -it` through a real pseudo-terminal: the
// command gets a terminal of its own, its exit code comes back, and a
// resize of the caller's terminal reaches the container.
func TestExecTty(t *testing.T) {
	pt := newPodTest(t)
	_, id := pt.sleeper("exectty")
	master, slave := openPty(t)
	setPtySize(t, master, 24, 80)
	s := crictlSession(t, pt.d, "exec", "-it", id, "sh")
	s.onTerminal(slave)
	s.start(master)
	slave.Close() // crictl holds the only slave end now

	type line struct{ in, want string }
	for _, l := range []line{{"tty", "/dev/pts/"}, {"stty size", "24 80"}} {
		write(t, master, l.in+"\n")
		s.waitOutput(l.want)
	}
	setPtySize(t, master, 33, 111)
	// The resize travels on its own stream; ask until it has arrived.
	if !waitUntil(sessionLimit, func() bool {
		write(t, master, "stty size\n")
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(s.out.String(), "33 111")
	}) {
		t.Fatalf("the resize did not reach the container:\n%s", s.out.String())
	}
	write(t, master, "tty; echo $((6*7)); exit 3\n")
	code := s.wait()
	out := s.out.String()
	if !hasLine(out, "42") {
		t.Errorf("no 42 on its own line in:\n%q", out)
	}
	// crictl reports the command's exit code in its message and exits 1.
	if code == 0 || !strings.Contains(out, "exit code 3") {
		t.Errorf("exec -it of exit 3: crictl exit %d, output:\n%s", code, out)
	}
	if left := hostExecs(pt.d, id); len(left) > 0 {
		t.Errorf("exec processes left on the host: %v", left)
	}
	pt.finish()
}

// hasLine reports whether terminal output has a line that is exactly
// want (terminals end lines with \r\n, or \r\r\n through two ptys).
func hasLine(out, want string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimRight(line, "\r") == want {
			return true
		}
	}
	return false
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatalf("writing %q: %v", s, err)
	}
}

// TestAttachStdin attaches to a container that waits for a line on its
// stdin: the line reaches it, its answer comes back, and it exits 0 once
// stdin (stdin_once) is done.
func TestAttachStdin(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("attach")
	podID := pt.runPod(pod)
	id := pt.createAndStart(podID, pod, pt.stdinConfig("reader", "read line; echo got:$line"))

	s := crictlSession(t, pt.d, "attach", "-i", id)
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	// The container reads only once attached: the line may be written at
	// once, it waits in the stream until the attach is through.
	write(t, stdin, "hello\n")
	s.waitOutput("got:hello")
	stdin.Close()
	if code := s.wait(); code != 0 {
		t.Errorf("crictl attach exit %d:\n%s", code, s.out.String())
	}
	if st := pt.waitExit(id); st.GetExitCode() != 0 {
		t.Errorf("container exit %d (%s)", st.GetExitCode(), st.GetReason())
	}
	pt.finish()
}

// TestPortForward forwards a local port to busybox httpd in a pod and
// fetches a file through it.
func TestPortForward(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("forward")
	podID := pt.runPod(pod)
	pt.createAndStart(podID, pod, pt.ctrConfig("web",
		"mkdir -p /www && echo served-from-the-pod > /www/index.html && exec httpd -f -p 80 -h /www"))
	port := freePort(t)
	s := crictlSession(t, pt.d, "port-forward", podID, fmt.Sprintf("%d:80", port))
	s.start()
	s.waitOutput(fmt.Sprintf("Forwarding from 127.0.0.1:%d", port))

	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	var body string
	// httpd may still be starting: the first connections can be refused
	// inside the pod.
	if !waitUntil(sessionLimit, func() bool {
		b, err := httpGet(url)
		body = b
		return err == nil && strings.Contains(b, "served-from-the-pod")
	}) {
		t.Fatalf("GET %s through the forward: %q\n%s", url, body, s.out.String())
	}
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	s.wait()
	if _, err := httpGet(url); err == nil {
		t.Error("the local port still answers after crictl stopped")
	}
	pt.finish()
}

// TestStreamPanicDuringExec arms a panic in the stream service while an
// interactive exec runs: CRI keeps serving, the service restarts, the open
// session ends with its process killed, and a new exec works.
func TestStreamPanicDuringExec(t *testing.T) {
	pt := newPodTest(t)
	_, id := pt.sleeper("streampanic")
	s := crictlSession(t, pt.d, "exec", "-i", id, "cat")
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	defer stdin.Close()
	write(t, stdin, "ping\n")
	s.waitOutput("ping")
	if procs := pt.processesIn(id); !slices.ContainsFunc(procs, func(p string) bool { return strings.HasSuffix(p, " cat") }) {
		t.Fatalf("no cat in the container during the session: %v", procs)
	}

	if err := pt.d.Fault("stream", "panic", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.cri.Version(pt.ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("Version after the stream panic: %v", err)
	}
	if _, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{}); err != nil {
		t.Errorf("ListContainers after the stream panic: %v", err)
	}
	// The cut session is reported to the client as a failure, not as a
	// command that ended well.
	if code := s.wait(); code == 0 {
		t.Errorf("the cut session ended with crictl exit 0:\n%s", s.out.String())
	}
	waitFor(t, "the stream service to run again", func() bool {
		row := treeRow(t, pt.d, "stream")
		n, _ := strconv.Atoi(row[3])
		return row[2] == "running" && n >= 1
	})
	if out := crictl(t, pt.d, "exec", id, "echo", "after the restart"); out != "after the restart" {
		t.Errorf("exec after the restart: %q", out)
	}
	if procs := pt.processesIn(id); len(procs) != 1 || !strings.HasSuffix(procs[0], "sleep 3600") {
		t.Errorf("processes in the container after the session ended: %v", procs)
	}
	if left := hostExecs(pt.d, id); len(left) > 0 {
		t.Errorf("exec processes left on the host: %v", left)
	}
	pt.finish()
}

// TestStreamBadInput checks the CRI calls that hand out stream URLs for
// refusals with the right codes, and that a URL works only once.
func TestStreamBadInput(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("streambad")
	podID := pt.runPod(pod)
	id := pt.createAndStart(podID, pod, pt.ctrConfig("sleeper", "sleep 3600"))
	stopped := pt.createAndStart(podID, pod, pt.ctrConfig("done", "true"))
	pt.waitExit(stopped)
	execReq := func(id string, cmd ...string) func() error {
		return func() error {
			_, err := pt.cri.Exec(pt.ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: cmd, Stdout: true})
			return err
		}
	}
	forward := func(ports ...int32) func() error {
		return func() error {
			_, err := pt.cri.PortForward(pt.ctx, &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: ports})
			return err
		}
	}
	cases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"exec without command", execReq(id), codes.InvalidArgument},
		{"exec of an empty command name", execReq(id, ""), codes.InvalidArgument},
		{"exec in a stopped container", execReq(stopped, "true"), codes.FailedPrecondition},
		{"exec in an unknown container", execReq("feedbeef", "true"), codes.NotFound},
		{"exec without streams", func() error {
			_, err := pt.cri.Exec(pt.ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}})
			return err
		}, codes.InvalidArgument},
		{"attach with tty and stderr", func() error {
			_, err := pt.cri.Attach(pt.ctx, &runtimeapi.AttachRequest{ContainerId: id, Tty: true, Stdout: true, Stderr: true})
			return err
		}, codes.InvalidArgument},
		{"attach to a stopped container", func() error {
			_, err := pt.cri.Attach(pt.ctx, &runtimeapi.AttachRequest{ContainerId: stopped, Stdout: true})
			return err
		}, codes.FailedPrecondition},
		{"port-forward to port 0", forward(0), codes.InvalidArgument},
		{"port-forward to port 70000", forward(70000), codes.InvalidArgument},
		{"port-forward to an unknown pod", func() error {
			_, err := pt.cri.PortForward(pt.ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "feedbeef", Port: []int32{80}})
			return err
		}, codes.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); status.Code(err) != tc.want {
				t.Errorf("want %s, got %v", tc.want, err)
			}
		})
	}
	t.Run("url used twice", func(t *testing.T) {
		resp, err := pt.cri.Exec(pt.ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		fwd, err := pt.cri.PortForward(pt.ctx, &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{80}})
		if err != nil {
			t.Fatal(err)
		}
		for _, url := range []string{resp.GetUrl(), fwd.GetUrl()} {
			first := postStatus(t, url)
			if first == http.StatusNotFound {
				t.Errorf("first use of %s: %d", url, first)
			}
			if again := postStatus(t, url); again != http.StatusNotFound {
				t.Errorf("second use of %s: %d, want 404", url, again)
			}
		}
	})
	pt.finish()
}

// postStatus sends a plain POST (no protocol upgrade) to a stream URL and
// returns the status code.
func postStatus(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(url, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestExecSyncLatency measures ExecSync of `true` through the CRI and the
// same exec with plain runc as the floor. It only logs the figures.
func TestExecSyncLatency(t *testing.T) {
	const calls = 200
	pt := newPodTest(t)
	_, id := pt.sleeper("latency")
	viaCRI := measure(t, calls, func() error {
		resp, err := pt.cri.ExecSync(pt.ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}, Timeout: 10})
		if err == nil && resp.GetExitCode() != 0 {
			err = fmt.Errorf("exit %d: %s", resp.GetExitCode(), resp.GetStderr())
		}
		return err
	})
	root := runcRoot(t, pt.d)
	viaRunc := measure(t, calls, func() error {
		out, err := exec.Command("runc", "--root", root, "exec", id, "true").CombinedOutput()
		if err != nil {
			return fmt.Errorf("runc exec: %w: %s", err, out)
		}
		return nil
	})
	t.Logf("ExecSync true over %d calls: median %s p99 %s", calls, viaCRI.median, viaCRI.p99)
	t.Logf("runc exec true over %d calls (floor): median %s p99 %s", calls, viaRunc.median, viaRunc.p99)
	pt.finish()
}

type latency struct{ median, p99 time.Duration }

// measure calls f n times after a few warm-up calls and returns the median
// and 99th percentile of its duration.
func measure(t *testing.T, n int, f func() error) latency {
	t.Helper()
	for range 3 {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	took := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	round := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return latency{median: round(took[n/2]), p99: round(took[(n*99)/100-1])}
}
