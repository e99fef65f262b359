package nsfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPinAndUnmountAll(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind mount")
	}
	path := filepath.Join(t.TempDir(), "net")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if IsPinned(path) || IsPinned("") {
		t.Fatal("a plain file or an empty path counts as pinned")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Stack the same (host) namespace twice, as a retried pin could.
	for range 2 {
		if err := unix.Mount(ThreadPath("net"), path, "none", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
	}
	if !IsPinned(path) {
		t.Fatal("bind mounted namespace file is not seen as pinned")
	}
	if err := UnmountAll(path); err != nil {
		t.Fatal(err)
	}
	if IsPinned(path) {
		t.Fatal("still pinned after UnmountAll")
	}
	if err := UnmountAll(path); err != nil {
		t.Fatalf("second UnmountAll of a plain file: %v", err)
	}
	if err := UnmountAll(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("UnmountAll of a missing path: %v", err)
	}
}
