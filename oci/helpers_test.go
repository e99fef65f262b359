package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/internal/cgroupfs"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arbor-cri/arbor/internal/testrootfs"
)

const (
	conmonBin  = "/usr/bin/conmon"
	busyboxBin = testrootfs.Busybox
)

// applets are the busybox commands the test containers use.
var applets = []string{"sh", "echo", "sleep", "ps", "cat", "tty", "head", "true", "grep", "stty"}

// env is one Runtime plus the per-test folders and cgroup parent.
type env struct {
	rt       *Runtime
	cfg      Config
	dir      string
	cgParent string
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// requireHost skips when the real parts this package drives are absent.
func requireHost(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	for _, p := range []string{conmonBin, busyboxBin} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed", p)
		}
	}
	return runc
}

// newEnv builds a Runtime over fresh folders and removes the test cgroup
// parent and any leftover containers at the end.
func newEnv(t *testing.T) *env {
	t.Helper()
	runc := requireHost(t)
	dir := t.TempDir()
	cfg := Config{
		ConmonPath:     conmonBin,
		Handlers:       map[string]Handler{"runc": {RuntimePath: runc, RuntimeRoot: filepath.Join(dir, "runc")}},
		DefaultHandler: "runc",
		ExitDir:        filepath.Join(dir, "exits"),
		AttachDir:      filepath.Join(dir, "attach"),
		StateDir:       filepath.Join(dir, "state"),
		LogLevel:       "debug",
	}
	rt, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := &env{rt: rt, cfg: cfg, dir: dir, cgParent: "/arbor-test-" + randomHex(t, 6)}
	t.Cleanup(func() { e.cleanup(t) })
	return e
}

func (e *env) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, _ := e.rt.IDs()
	for _, id := range ids {
		if err := e.rt.Delete(ctx, id); err != nil {
			t.Errorf("cleanup delete %s: %v", id, err)
		}
	}
	removeCgroupTree(t, e.cgParent)
}

// removeCgroupTree removes rel (deepest folders first) in every hierarchy.
func removeCgroupTree(t *testing.T, rel string) {
	roots, err := cgroupfs.Hierarchies()
	if err != nil {
		t.Errorf("listing cgroups: %v", err)
		return
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(root, rel), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				t.Errorf("removing cgroup %s: %v", d, err)
			}
		}
	}
}

// testSpec is a minimal OCI config running args in a busybox rootfs.
func testSpec(args []string, cgroupsPath string, terminal bool) *specs.Spec {
	s := testrootfs.MinimalSpec(args, cgroupsPath)
	s.Hostname = "arbor-test"
	s.Process.Terminal = terminal
	s.Process.Env = append(s.Process.Env, "TERM=xterm")
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	)
	s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	return s
}

// ctr describes one test container.
type ctr struct {
	id, bundle, logPath, cgroupsPath string
}

// bundle writes a bundle for args and returns the container description.
func (e *env) bundle(t *testing.T, args []string, mutate ...func(*specs.Spec)) ctr {
	t.Helper()
	id := randomHex(t, 8)
	c := ctr{
		id:          id,
		bundle:      filepath.Join(e.dir, "bundles", id),
		logPath:     filepath.Join(e.dir, "logs", id+".log"),
		cgroupsPath: e.cgParent + "/" + id,
	}
	testrootfs.Build(t, filepath.Join(c.bundle, "rootfs"), testrootfs.Options{Applets: applets, Dirs: testrootfs.MountPoints})
	if err := os.MkdirAll(filepath.Dir(c.logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(args, c.cgroupsPath, false)
	for _, m := range mutate {
		m(spec)
	}
	testrootfs.WriteConfig(t, c.bundle, spec)
	return c
}

func (c ctr) opts() CreateOptions {
	return CreateOptions{ID: c.id, BundleDir: c.bundle, LogPath: c.logPath}
}

// run creates and starts a container and returns its init pid.
func (e *env) run(t *testing.T, c ctr) int {
	t.Helper()
	ctx := context.Background()
	pid, err := e.rt.Create(ctx, c.opts())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := e.rt.Start(ctx, c.id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return pid
}

// waitLog waits until the container log contains want.
func waitLog(t *testing.T, c ctr, want string) string {
	t.Helper()
	var data []byte
	ok := waitUntil(context.Background(), 20*time.Second, func() bool {
		data, _ = os.ReadFile(c.logPath)
		return strings.Contains(string(data), want)
	})
	if !ok {
		t.Fatalf("log %s never contained %q; it has %q", c.logPath, want, data)
	}
	return string(data)
}

// waitExit waits for the exit file and returns the exit code.
func (e *env) waitExit(t *testing.T, id string) int {
	t.Helper()
	var code int
	ok := waitUntil(context.Background(), 20*time.Second, func() bool {
		var done bool
		var err error
		code, _, done, err = e.rt.ReadExit(id)
		if err != nil {
			t.Fatalf("ReadExit: %v", err)
		}
		return done
	})
	if !ok {
		t.Fatalf("container %s never exited", id)
	}
	return code
}
