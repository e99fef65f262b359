package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arbor-cri/arbor/internal/syncbuf"
	"github.com/arbor-cri/arbor/internal/testrootfs"
	"github.com/arbor-cri/arbor/oci"
)

const (
	conmonBin  = "/usr/bin/conmon"
	busyboxBin = testrootfs.Busybox
)

// conmonEnv is a real oci.Runtime (conmon + runc) over test folders.
type conmonEnv struct {
	rt       *oci.Runtime
	dir      string
	cgParent string
}

func newConmonEnv(t *testing.T) *conmonEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running containers needs root")
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
	dir := t.TempDir()
	rt, err := oci.New(oci.Config{
		ConmonPath:     conmonBin,
		Handlers:       map[string]oci.Handler{"runc": {RuntimePath: runc, RuntimeRoot: filepath.Join(dir, "runc")}},
		DefaultHandler: "runc",
		ExitDir:        filepath.Join(dir, "exits"),
		AttachDir:      filepath.Join(dir, "attach"),
		StateDir:       filepath.Join(dir, "state"),
	}, testLog())
	if err != nil {
		t.Fatalf("oci.New: %v", err)
	}
	e := &conmonEnv{rt: rt, dir: dir, cgParent: "/arbor-stream-test-" + randomHex(t)}
	t.Cleanup(func() { e.cleanup(t) })
	return e
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (e *conmonEnv) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, _ := e.rt.IDs()
	for _, id := range ids {
		if err := e.rt.Delete(ctx, id); err != nil {
			t.Errorf("deleting container %s: %v", id, err)
		}
	}
	removeCgroups(t, e.cgParent)
}

// removeCgroups removes rel, deepest first, from every cgroup hierarchy.
func removeCgroups(t *testing.T, rel string) {
	roots, _ := os.ReadDir("/sys/fs/cgroup")
	for _, root := range roots {
		if !root.IsDir() {
			continue // cpu,cpuacct style links
		}
		var dirs []string
		_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup", root.Name(), rel), func(p string, d os.DirEntry, err error) error {
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

// run creates and starts a busybox container running args with a stdin
// pipe; stdinOnce closes it when the attached client ends its input.
func (e *conmonEnv) run(t *testing.T, args []string, stdinOnce bool) string {
	t.Helper()
	id := randomHex(t)
	bundle := filepath.Join(e.dir, "bundles", id)
	testrootfs.Build(t, filepath.Join(bundle, "rootfs"), testrootfs.Options{
		Applets: []string{"sh", "echo", "cat", "sleep"}, Dirs: []string{"proc", "dev", "sys"},
	})
	writeSpec(t, bundle, args, e.cgParent+"/"+id)
	opts := oci.CreateOptions{ID: id, BundleDir: bundle, LogPath: filepath.Join(bundle, "ctr.log"), Stdin: true, StdinOnce: stdinOnce}
	ctx := context.Background()
	if _, err := e.rt.Create(ctx, opts); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := e.rt.Start(ctx, id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return id
}

// writeSpec writes a minimal config running args with /proc and a /dev tmpfs.
func writeSpec(t *testing.T, bundle string, args []string, cgroupsPath string) {
	t.Helper()
	spec := testrootfs.MinimalSpec(args, cgroupsPath)
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}})
	testrootfs.WriteConfig(t, bundle, spec)
}

// TestAttachConmonRealContainer attaches to a conmon container: input
// reaches the process, stdout and stderr arrive apart, and the attach ends
// when the container exits after its stdin (StdinOnce) closed.
func TestAttachConmonRealContainer(t *testing.T) {
	e := newConmonEnv(t)
	id := e.run(t, []string{"sh", "-c", "while read x; do echo out $x; echo err $x >&2; done"}, true)
	var out, errOut syncbuf.Buffer
	opts := AttachOptions{Stdin: io.NopCloser(strings.NewReader("one\ntwo\n")), Stdout: &out, Stderr: &errOut}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := AttachConmon(ctx, e.rt, testLog(), id, true, opts); err != nil {
		t.Fatalf("AttachConmon: %v", err)
	}
	if out.String() != "out one\nout two\n" || errOut.String() != "err one\nerr two\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}
