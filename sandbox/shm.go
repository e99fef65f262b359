package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsfile"
)

// DefaultShmSize is the size of a pod's /dev/shm when none is given:
// 64 MiB, what the kubelet and Docker expect.
const DefaultShmSize int64 = 64 << 20

// shmFlags are the mount flags of a pod /dev/shm.
const shmFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// MountShm mounts a tmpfs (mode 1777, nosuid, nodev, noexec) of sizeBytes
// (DefaultShmSize when <= 0) at path, creating the folder. It fails if
// something is already mounted there. Pods with host IPC use the host's
// /dev/shm and need no MountShm.
func MountShm(path string, sizeBytes int64) error {
	if sizeBytes <= 0 {
		sizeBytes = DefaultShmSize
	}
	created, err := makeDir(path)
	if err != nil {
		return fmt.Errorf("creating shm folder: %w", err)
	}
	if err := mountTmpfs(path, sizeBytes); err != nil {
		if created {
			os.Remove(path)
		}
		return fmt.Errorf("mounting shm at %s: %w", path, err)
	}
	return nil
}

// makeDir creates path and its parents and reports whether path is new.
func makeDir(path string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	err := os.Mkdir(path, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	return err == nil, err
}

// mountTmpfs mounts the shm tmpfs on path unless something is there.
func mountTmpfs(path string, sizeBytes int64) error {
	mounted, err := mountinfo.Mounted(path)
	if err != nil {
		return err
	}
	if mounted {
		return errors.New("already mounted")
	}
	return unix.Mount("shm", path, "tmpfs", shmFlags, fmt.Sprintf("mode=1777,size=%d", sizeBytes))
}

// UnmountShm unmounts the pod's shm at path and removes the folder. It
// succeeds when both are already gone.
func UnmountShm(path string) error {
	if err := nsfile.UnmountAll(path); err != nil {
		return fmt.Errorf("unmounting shm at %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing shm folder: %w", err)
	}
	return nil
}
