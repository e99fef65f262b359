package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The lock helper is this test binary run again: it takes the run-root
// lock in its own process, optionally hands the descriptor to a long
// child, says "locked" and then waits for stdin to close.
const helperEnv = "ARBOR_LOCK_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv("ARBOR_LOCK_SLEEPER") != "" {
		time.Sleep(30 * time.Second) // a stand-in for a stuck fork of the daemon
		os.Exit(0)
	}
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(lockHelper(dir))
	}
	os.Exit(m.Run())
}

func lockHelper(dir string) int {
	f, err := lockRunRoot(dir)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if os.Getenv("ARBOR_LOCK_HANDOFF") != "" {
		// A copy of this executable that inherits the descriptor, as a
		// fork made by a library would, and outlives this process.
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), "ARBOR_LOCK_SLEEPER=1")
		child.ExtraFiles = []*os.File{f}
		if err := child.Start(); err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("locked", child.Process.Pid)
		return 0 // the process ends: its lock must go with it
	}
	fmt.Println("locked", os.Getpid())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startHelper runs the helper and returns its first line's pid.
func startHelper(t *testing.T, dir string, handoff bool) (*exec.Cmd, io.WriteCloser, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	if handoff {
		cmd.Env = append(cmd.Env, "ARBOR_LOCK_HANDOFF=1")
	}
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "locked" {
		t.Fatalf("helper: %q", line)
	}
	pid, _ := strconv.Atoi(f[1])
	return cmd, stdin, pid
}

func TestLockRunRootRefusesASecondDaemon(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin, pid := startHelper(t, dir, false)
	defer func() { stdin.Close(); cmd.Wait() }()
	_, err := lockRunRoot(dir)
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), fmt.Sprintf("held by pid %d", pid)) {
		t.Fatalf("want ErrAlreadyRunning naming pid %d, got %v", pid, err)
	}
	stdin.Close()
	cmd.Wait()
	f, err := lockRunRoot(dir)
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	f.Close()
}

// TestLockRunRootNotKeptByChildren: a child that inherited the lock's
// descriptor and outlives the daemon does not keep the next daemon out.
func TestLockRunRootNotKeptByChildren(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin, childPid := startHelper(t, dir, true)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p, err := os.FindProcess(childPid); err == nil {
			p.Kill()
			p.Wait()
		}
	}()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", childPid)); err != nil {
		t.Fatalf("the inheriting child is gone already: %v", err)
	}
	f, err := lockRunRoot(dir)
	if err != nil {
		t.Fatalf("a child holding the descriptor kept the lock: %v", err)
	}
	defer f.Close()
	killLeftoverForks(f.Name(), slog.New(slog.DiscardHandler))
	for range 100 {
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", childPid)); err != nil || strings.Contains(string(stat), ") Z ") {
			return // killed (a zombie until init reaps it)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the leftover holder of the lock file was not killed")
}
