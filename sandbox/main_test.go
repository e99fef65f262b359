package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"go.podman.io/storage/pkg/reexec"
	"go.uber.org/goleak"
)

// hostNS holds this process's ipc, uts and net namespace links read
// before any test ran.
var hostNS = map[string]string{}

func TestMain(m *testing.M) {
	// The user namespace holder re-executes this binary.
	if reexec.Init() {
		return
	}
	for _, kind := range []string{"ipc", "uts", "net"} {
		hostNS[kind], _ = os.Readlink("/proc/self/ns/" + kind)
	}
	goleak.VerifyTestMain(m)
}

// requireRoot skips tests that need namespaces, mounts and cgroups.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces, mounts and cgroups")
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// mountsUnder lists the mount points at or below dir in this process's
// mount table.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Clean(dir)))
	if err != nil {
		t.Fatalf("reading mountinfo: %v", err)
	}
	var out []string
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	return out
}

// requireNoMounts fails when anything is mounted at or below dir.
func requireNoMounts(t *testing.T, dir string) {
	t.Helper()
	if m := mountsUnder(t, dir); len(m) > 0 {
		t.Fatalf("mounts left under %s: %v", dir, m)
	}
}

// run runs a command and returns its trimmed stdout.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// readlink returns the target of a namespace link, failing the test.
func readlink(t *testing.T, path string) string {
	t.Helper()
	s, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// requireNotExist fails when path exists.
func requireNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("%s still exists (stat err %v)", path, err)
	}
}
