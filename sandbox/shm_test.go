package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func TestMountShm(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name     string
		size     int64
		wantSize int64
	}{
		{name: "default size", size: 0, wantSize: 64 << 20},
		{name: "explicit size", size: 8 << 20, wantSize: 8 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, "pod", "shm")
			if err := MountShm(path, tc.size); err != nil {
				t.Fatalf("MountShm: %v", err)
			}
			t.Cleanup(func() { UnmountShm(path) })
			checkShm(t, path, tc.wantSize)
			if err := MountShm(path, tc.size); err == nil {
				t.Error("second MountShm succeeded on a mounted path")
			}
			if n := len(mountsUnder(t, root)); n != 1 {
				t.Errorf("%d mounts under %s, want 1", n, root)
			}
			for i := range 2 {
				if err := UnmountShm(path); err != nil {
					t.Fatalf("UnmountShm #%d: %v", i+1, err)
				}
				requireNoMounts(t, root)
				requireNotExist(t, path)
			}
		})
	}
}

// checkShm checks the tmpfs type, size, mode and mount flags at path.
func checkShm(t *testing.T, path string, wantSize int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Errorf("filesystem type %#x, want tmpfs", st.Type)
	}
	if size := int64(st.Blocks) * st.Bsize; size != wantSize {
		t.Errorf("size = %d, want %d", size, wantSize)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.ModeDir | os.ModeSticky | 0o777; fi.Mode() != want {
		t.Errorf("mode = %v, want %v", fi.Mode(), want)
	}
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil || len(infos) != 1 {
		t.Fatalf("mountinfo for %s: %v %v", path, infos, err)
	}
	opts := strings.Split(infos[0].Options, ",")
	for _, o := range []string{"nosuid", "nodev", "noexec"} {
		if !slices.Contains(opts, o) {
			t.Errorf("mount options %v lack %s", opts, o)
		}
	}
}
