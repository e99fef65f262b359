package hooks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arbor-cri/arbor/internal/testrootfs"
)

// hookScript records the state runc hands a hook on stdin, then the stage
// its hook entry's env names, into the file named by its first argument.
const hookScript = `#!/bin/sh
{ /bin/cat; echo; echo "stage=$ARBOR_HOOK_STAGE"; } > "$1"
`

// requireRunc skips when the real parts this test drives are absent.
func requireRunc(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run runc")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	testrootfs.RequireBusybox(t)
	return runc
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "arbor-hooktest-" + hex.EncodeToString(b)
}

// TestHooksRunUnderRunc injects hooks into a real spec and runs it with
// runc: the matching prestart and createRuntime hooks must run with the
// container state on stdin, and the hook that does not match must not.
func TestHooksRunUnderRunc(t *testing.T) {
	runc := requireRunc(t)
	work := t.TempDir()
	id := randomID(t)
	script := filepath.Join(work, "record-hook")
	if err := os.WriteFile(script, []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	out := func(name string) string { return filepath.Join(work, name+".out") }
	dir := filepath.Join(work, "hooks.d")
	writeHook(t, dir, "10-prestart.json", script, `{"version":"1.0.0",
		"hook":{"path":"BIN","args":["record-hook","`+out("prestart")+`"],"env":["ARBOR_HOOK_STAGE=prestart"],"timeout":30},
		"when":{"annotations":{"^example\\.com/hooked$":"^yes$"}},"stages":["prestart"]}`)
	writeHook(t, dir, "20-create-runtime.json", script, `{"version":"1.0.0",
		"hook":{"path":"BIN","args":["record-hook","`+out("createRuntime")+`"],"env":["ARBOR_HOOK_STAGE=createRuntime"]},
		"when":{"commands":["^true$"]},"stages":["createRuntime"]}`)
	writeHook(t, dir, "30-other.json", script, `{"version":"1.0.0",
		"hook":{"path":"BIN","args":["record-hook","`+out("other")+`"]},
		"when":{"commands":["^nginx$"]},"stages":["prestart","createRuntime"]}`)
	m := newManager(t, dir)

	bundle := filepath.Join(work, "bundle")
	testrootfs.Build(t, filepath.Join(bundle, "rootfs"), testrootfs.Options{
		Applets: []string{"sh", "true"}, Dirs: testrootfs.MountPoints, Symlink: true,
	})
	sp := minimalSpec("/" + id)
	applied, err := m.Apply(sp, sp.Annotations, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10-prestart.json", "20-create-runtime.json"}; !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	testrootfs.WriteConfig(t, bundle, sp)
	t.Cleanup(func() { cleanupContainer(t, runc, work, id) })
	runContainer(t, runc, work, bundle, id)

	for _, stage := range []string{"prestart", "createRuntime"} {
		assertHookRan(t, out(stage), id, bundle, stage)
	}
	if _, err := os.Stat(out("other")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the hook that does not match ran (stat: %v)", err)
	}
}

// assertHookRan checks the file a hook wrote: the state JSON of container
// id in bundle, then the stage line.
func assertHookRan(t *testing.T, path, id, bundle, stage string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the %s hook did not run: %v", stage, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2 {
		t.Fatalf("%s hook wrote %q, want state JSON then the stage", stage, data)
	}
	var st specs.State
	if err := json.Unmarshal([]byte(lines[0]), &st); err != nil {
		t.Fatalf("%s hook stdin %q is not state JSON: %v", stage, lines[0], err)
	}
	if st.ID != id || st.Bundle != bundle || st.Pid <= 0 {
		t.Fatalf("%s hook got state %+v, want id %s, bundle %s and a pid", stage, st, id, bundle)
	}
	if lines[1] != "stage="+stage {
		t.Fatalf("%s hook saw %q: its env was not passed", stage, lines[1])
	}
}

// minimalSpec runs /bin/true in fresh namespaces under cgroupsPath.
func minimalSpec(cgroupsPath string) *specs.Spec {
	s := testrootfs.MinimalSpec([]string{"/bin/true"}, cgroupsPath)
	s.Annotations = map[string]string{"example.com/hooked": "yes"}
	return s
}

// runContainer runs the bundle in the foreground; runc deletes the
// container when its process exits. Output goes to a file so that nothing
// holding a pipe can block the call.
func runContainer(t *testing.T, runc, work, bundle, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logPath := filepath.Join(work, "runc.out")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, runc, "--root", filepath.Join(work, "runc"), "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("runc run: %v: %s", err, out)
	}
}

// cleanupContainer deletes what a failed run may have left: the runc
// container and its cgroup in every hierarchy.
func cleanupContainer(t *testing.T, runc, work, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, runc, "--root", filepath.Join(work, "runc"), "delete", "--force", id).CombinedOutput(); err != nil &&
		!bytes.Contains(out, []byte("does not exist")) {
		t.Errorf("runc delete: %v: %s", err, out)
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", id))
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("removing cgroup %s: %v", d, err)
		}
	}
}
