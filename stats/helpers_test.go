package stats

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needRoot skips tests that make namespaces and cgroups.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make namespaces and cgroups")
	}
}

// startReady starts cmd, waits for it to print "ready" on stdout and
// kills it at cleanup. It returns the pid as a string.
func startReady(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitLine(t, bufio.NewReader(out), "ready")
	return strconv.Itoa(cmd.Process.Pid)
}

// waitLine reads lines until one equals want.
func waitLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if line == want+"\n" {
			return
		}
		if err == io.EOF || err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
	}
}
