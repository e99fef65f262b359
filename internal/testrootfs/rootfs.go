// Package testrootfs builds busybox root filesystems and minimal OCI
// bundles for tests that run real containers. It is for tests only: its
// functions take a testing.TB and end the test on any error. It lives in
// non-test files only because test helpers cannot be imported across
// packages; product code must not import it.
package testrootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// Busybox is the host's dynamically linked busybox every rootfs is built from.
const Busybox = "/usr/bin/busybox"

// MountPoints are the empty folders most test containers mount over.
var MountPoints = []string{"proc", "dev", "sys", "tmp"}

// lddPath matches one resolved library path in ldd output.
var lddPath = regexp.MustCompile(`(/\S+) \(0x`)

// Options says what Build puts in a rootfs beside busybox and its libraries.
type Options struct {
	// Applets are the busybox command names linked into /bin.
	Applets []string
	// Dirs are extra empty folders to create, relative to the rootfs
	// (mount points such as MountPoints).
	Dirs []string
	// Symlink makes each applet a symlink to /usr/bin/busybox; otherwise it
	// is a hard link to the rootfs's copy of busybox.
	Symlink bool
}

// RequireBusybox skips the test when the host has no busybox to copy.
func RequireBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Busybox); err != nil {
		t.Skipf("%s is not installed", Busybox)
	}
}

// Build copies busybox and the libraries ldd lists for it into dir at their
// host paths (mode 0755), creates /bin and o.Dirs, and links o.Applets into
// /bin. It fails the test on any error.
func Build(t testing.TB, dir string, o Options) {
	t.Helper()
	for _, f := range append([]string{Busybox}, libraries(t)...) {
		copyExecutable(t, f, filepath.Join(dir, f))
	}
	for _, sub := range append([]string{"bin"}, o.Dirs...) {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("creating rootfs folder %s: %v", sub, err)
		}
	}
	for _, a := range o.Applets {
		linkApplet(t, dir, a, o.Symlink)
	}
}

// libraries returns the host paths of the shared libraries busybox loads.
func libraries(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("ldd", Busybox).Output()
	if err != nil {
		t.Fatalf("ldd busybox: %v", err)
	}
	var libs []string
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs
}

// linkApplet makes /bin/name in dir run busybox.
func linkApplet(t testing.TB, dir, name string, symlink bool) {
	t.Helper()
	dst := filepath.Join(dir, "bin", name)
	var err error
	if symlink {
		err = os.Symlink(Busybox, dst)
	} else {
		err = os.Link(filepath.Join(dir, Busybox), dst)
	}
	if err != nil {
		t.Fatalf("linking applet %s: %v", name, err)
	}
}

// copyExecutable copies the content of src (following symlinks) to dst
// with mode 0755, creating dst's parent folders.
func copyExecutable(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("reading %s: %v", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatalf("creating folder for %s: %v", dst, err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatalf("writing %s: %v", dst, err)
	}
}
