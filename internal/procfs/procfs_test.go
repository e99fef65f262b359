package procfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHoldersAndDescribe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	child := exec.Command("sleep", "30")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	pid := child.Process.Pid
	targets := map[string]bool{path: true}
	if got := Holders(targets, nil); !slices.Equal(got, []int{pid}) {
		t.Errorf("Holders = %v, want [%d] (this process excluded)", got, pid)
	}
	if got := Holders(targets, SameExecutable); len(got) != 0 {
		t.Errorf("Holders running this executable = %v, want none (sleep is another)", got)
	}
	if d := Describe(pid); !strings.HasPrefix(d, fmt.Sprintf("%d (sleep, parent %d)", pid, os.Getpid())) {
		t.Errorf("Describe = %q", d)
	}
	if d := Describe(1 << 30); d != fmt.Sprint(1<<30) {
		t.Errorf("Describe of a missing process = %q", d)
	}
}

func TestExiting(t *testing.T) {
	if Exiting(os.Getpid()) {
		t.Error("this process reads as exiting")
	}
	child := exec.Command("true")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pid := child.Process.Pid
	for range 100 { // a zombie until waited for
		if Exiting(pid) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !Exiting(pid) {
		t.Errorf("an exited, unwaited child does not read as exiting")
	}
	child.Wait()
	if !Exiting(pid) {
		t.Errorf("a reaped process does not read as exiting")
	}
}
