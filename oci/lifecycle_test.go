package oci

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/internal/cgroupfs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestUnknownHandler(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"create", func() error {
			_, err := e.rt.Create(context.Background(), CreateOptions{ID: "abc", Handler: "nope"})
			return err
		}},
		{"new default", func() error {
			cfg := e.cfg
			cfg.DefaultHandler = "nope"
			_, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrUnknownHandler) {
				t.Fatalf("got %v, want ErrUnknownHandler", err)
			}
		})
	}
	if _, err := os.Stat(e.rt.stateDir("abc")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unknown handler left a state folder: %v", err)
	}
}

func TestRunToExitAndDelete(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"sh", "-c", "echo hello; exit 3"})
	ctx := context.Background()
	pid, err := e.rt.Create(ctx, c.opts())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if pid <= 0 {
		t.Fatalf("Create returned pid %d", pid)
	}
	st, err := e.rt.State(ctx, c.id)
	if err != nil || st.Status != StatusCreated || st.Pid != pid {
		t.Fatalf("State after create = %+v, %v; want created with pid %d", st, err, pid)
	}
	if err := e.rt.Start(ctx, c.id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if code := e.waitExit(t, c.id); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	assertCRILogLine(t, waitLog(t, c, "hello"), "stdout", "hello")
	if st, err := e.rt.State(ctx, c.id); err != nil || st.Status != StatusStopped {
		t.Fatalf("State after exit = %+v, %v; want stopped", st, err)
	}
	if _, err := e.rt.ExecSync(ctx, c.id, []string{"true"}, 5*time.Second); err == nil {
		t.Fatal("ExecSync in a stopped container succeeded")
	}
	if err := e.rt.Delete(ctx, c.id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e.assertGone(t, c.id)
	if err := e.rt.Delete(ctx, c.id); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

// assertCRILogLine checks that log has "<RFC3339Nano> <stream> F <text>".
func assertCRILogLine(t *testing.T, log, stream, text string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		parts := strings.SplitN(line, " ", 4)
		if len(parts) != 4 || parts[1] != stream || parts[2] != "F" || parts[3] != text {
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			t.Fatalf("log line %q has a bad time: %v", line, err)
		}
		return
	}
	t.Fatalf("log %q has no %s line %q", log, stream, text)
}

// assertGone checks Delete left no conmon, runtime state or files.
func (e *env) assertGone(t *testing.T, id string) {
	t.Helper()
	pids, err := e.rt.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if pid, ok := pids[id]; ok {
		t.Fatalf("conmon %d still runs for %s", pid, id)
	}
	for _, p := range []string{
		e.rt.ExitFilePath(id), e.rt.stateDir(id), e.rt.attachLink(id),
		filepath.Join(e.cfg.Handlers["runc"].RuntimeRoot, id),
	} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still exists (%v)", p, err)
		}
	}
	if _, err := e.rt.State(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("State after delete: %v, want ErrNotFound", err)
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		timeout  time.Duration
		wantCode int
	}{
		{"exits on SIGTERM", `trap "exit 143" TERM; echo ready; sleep 1000 & wait`, 30 * time.Second, 143},
		{"ignores SIGTERM and is killed", `trap "" TERM; echo ready; sleep 1000 & wait`, 2 * time.Second, 137},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.bundle(t, []string{"sh", "-c", tc.script})
			e.run(t, c)
			waitLog(t, c, "ready")
			if err := e.rt.Stop(context.Background(), c.id, syscall.SIGTERM, tc.timeout); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			code, _, ok, err := e.rt.ReadExit(c.id)
			if err != nil || !ok || code != tc.wantCode {
				t.Fatalf("ReadExit = %d, %v, %v; want %d", code, ok, err, tc.wantCode)
			}
			if err := e.rt.Stop(context.Background(), c.id, syscall.SIGTERM, time.Second); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
		})
	}
}

func TestDetachedFromCaller(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"sh", "-c", "echo ready; sleep 1000"})
	e.run(t, c)
	conmon, err := e.rt.ConmonPID(c.id)
	if err != nil || conmon == 0 {
		t.Fatalf("ConmonPID = %d, %v", conmon, err)
	}
	if ppid := parentPid(t, conmon); ppid == os.Getpid() {
		t.Fatalf("conmon %d is a child of the test process", conmon)
	}
	if _, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
		t.Fatalf("test process still has children (zombie conmon?): %v", err)
	}
	// Drop the Runtime and manage the container from a new one.
	rt2, err := New(e.cfg, e.rt.log)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt2
	st, err := rt2.State(context.Background(), c.id)
	if err != nil || st.Status != StatusRunning {
		t.Fatalf("State from new Runtime = %+v, %v", st, err)
	}
	if pids, _ := rt2.Pids(); pids[c.id] != conmon {
		t.Fatalf("Pids() = %v, want %s -> %d", pids, c.id, conmon)
	}
	if err := rt2.Delete(context.Background(), c.id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e.assertGone(t, c.id)
}

func parentPid(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no PPid for %d", pid)
	return 0
}

func TestUpdateResources(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"sleep", "1000"})
	e.run(t, c)
	limit := int64(64 << 20)
	err := e.rt.UpdateResources(context.Background(), c.id, &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
	})
	if err != nil {
		t.Fatalf("UpdateResources: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(cgroupfs.Root, "memory", c.cgroupsPath, "memory.limit_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != "67108864" {
		t.Fatalf("memory.limit_in_bytes = %s, want 67108864", got)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"true"}, func(s *specs.Spec) { s.Root.Path = "missing-rootfs" })
	_, err := e.rt.Create(context.Background(), c.opts())
	if err == nil {
		t.Fatal("Create with a missing rootfs succeeded")
	}
	t.Logf("create error: %v", err)
	if !strings.Contains(err.Error(), "missing-rootfs") {
		t.Fatalf("error %q does not carry the runtime's message", err)
	}
	e.assertGone(t, c.id)
}

func TestCreateTwice(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"sleep", "1000"})
	e.run(t, c)
	if _, err := e.rt.Create(context.Background(), c.opts()); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	if st, err := e.rt.State(context.Background(), c.id); err != nil || st.Status != StatusRunning {
		t.Fatalf("first container disturbed: %+v, %v", st, err)
	}
}

func TestReopenLog(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"sh", "-c", "echo first; sleep 1000"})
	e.run(t, c)
	waitLog(t, c, "first")
	if err := os.Rename(c.logPath, c.logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.ReopenLog(context.Background(), c.id); err != nil {
		t.Fatalf("ReopenLog: %v", err)
	}
	// ReopenLog returns only once conmon has created the new file.
	if !fileExists(c.logPath) {
		t.Fatal("ReopenLog returned before conmon created the new log file")
	}
	res, err := e.rt.ExecSync(context.Background(), c.id, []string{"sh", "-c", "echo second > /proc/1/fd/1"}, 10*time.Second)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("ExecSync = %+v, %v", res, err)
	}
	assertCRILogLine(t, waitLog(t, c, "second"), "stdout", "second")
}

func TestConmonCgroup(t *testing.T) {
	e := newEnv(t)
	c := e.bundle(t, []string{"sleep", "1000"})
	opts := c.opts()
	opts.ConmonCgroup = e.cgParent + "/conmon"
	if _, err := e.rt.Create(context.Background(), opts); err != nil {
		t.Fatalf("Create: %v", err)
	}
	conmon, err := e.rt.ConmonPID(c.id)
	if err != nil || conmon == 0 {
		t.Fatalf("ConmonPID = %d, %v", conmon, err)
	}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(conmon), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	if want := ":memory:" + opts.ConmonCgroup + "\n"; !strings.Contains(string(data), want) {
		t.Fatalf("conmon cgroups %q lack %q", data, want)
	}
	if err := e.rt.Delete(context.Background(), c.id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
