package network

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsfile"
)

func TestNetNSLifecycle(t *testing.T) {
	requireRoot(t)
	m := newTestManager(t, "")
	path, err := m.NewNetNS("pod-a")
	if err != nil {
		t.Fatalf("NewNetNS: %v", err)
	}
	t.Cleanup(func() { m.RemoveNetNS(path) })
	if path != filepath.Join(m.Config().NetNSDir, "pod-a") || !mounted(t, path) || !nsfile.IsPinned(path) {
		t.Fatalf("netns %s not mounted as nsfs", path)
	}
	if inode(t, path) == inode(t, "/proc/self/ns/net") {
		t.Fatal("netns is the host's network namespace")
	}
	if flags, _ := ifaceIn(t, path, "lo"); flags == 0 {
		t.Fatal("lo missing in new netns")
	}
	if _, err := m.NewNetNS("pod-a"); err == nil {
		t.Fatal("second NewNetNS with the same id succeeded")
	}
	if !nsfile.IsPinned(path) {
		t.Fatal("failed duplicate NewNetNS broke the existing netns")
	}
	for range 2 {
		if err := m.RemoveNetNS(path); err != nil {
			t.Fatalf("RemoveNetNS: %v", err)
		}
		if mounted(t, path) {
			t.Fatal("netns still mounted")
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("netns file remains: %v", err)
		}
	}
}

func TestNewNetNSRejectsBadNames(t *testing.T) {
	requireRoot(t)
	m := newTestManager(t, "")
	for _, id := range []string{"", ".", "..", "a/b", "../x"} {
		t.Run(id, func(t *testing.T) {
			if path, err := m.NewNetNS(id); err == nil {
				m.RemoveNetNS(path)
				t.Fatalf("NewNetNS(%q) succeeded", id)
			}
		})
	}
	entries, _ := os.ReadDir(m.Config().NetNSDir)
	if len(entries) != 0 {
		t.Fatalf("netns dir has %d entries after failures", len(entries))
	}
}

func TestRemoveNetNSRefusesForeignPaths(t *testing.T) {
	m := newTestManager(t, "")
	foreign := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(foreign, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveNetNS(foreign); err == nil {
		t.Fatal("RemoveNetNS outside NetNSDir succeeded")
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("foreign file touched: %v", err)
	}
	if err := m.RemoveNetNS(""); err != nil {
		t.Fatalf("RemoveNetNS(\"\"): %v", err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
