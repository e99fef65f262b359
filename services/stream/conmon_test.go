package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arbor-cri/arbor/oci"
)

const (
	conmonBin  = "/usr/bin/conmon"
	busyboxBin = "/usr/bin/busybox"
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
	buildRootfs(t, filepath.Join(bundle, "rootfs"))
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

var lddPath = regexp.MustCompile(`(/\S+) \(0x`)

// buildRootfs copies busybox and the libraries ldd lists into dir.
func buildRootfs(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("ldd", busyboxBin).Output()
	if err != nil {
		t.Fatalf("ldd busybox: %v", err)
	}
	files := []string{busyboxBin}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		files = append(files, m[1])
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"bin", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"sh", "echo", "cat", "sleep"} {
		if err := os.Link(filepath.Join(dir, busyboxBin), filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
}

func writeSpec(t *testing.T, bundle string, args []string, cgroupsPath string) {
	t.Helper()
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: args, Env: []string{"PATH=/bin"}, Cwd: "/", NoNewPrivileges: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAttachConmonRealContainer attaches to a conmon container: input
// reaches the process, stdout and stderr arrive apart, and the attach ends
// when the container exits after its stdin (StdinOnce) closed.
func TestAttachConmonRealContainer(t *testing.T) {
	e := newConmonEnv(t)
	id := e.run(t, []string{"sh", "-c", "while read x; do echo out $x; echo err $x >&2; done"}, true)
	var out, errOut syncBuffer
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
