package sandbox

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsthread"
)

// onThrowawayThread runs fn on a locked thread that is thrown away after
// (nsthread.Run).
func onThrowawayThread(fn func() error) error { return nsthread.Run(fn) }

// threadNSPath is the namespace file of kind for the calling thread.
func threadNSPath(kind string) string {
	return fmt.Sprintf("/proc/%d/task/%d/ns/%s", unix.Getpid(), unix.Gettid(), kind)
}

// joinNamespace moves the calling (locked, throwaway) thread into the
// namespace pinned at path; nstype is a CLONE_NEW* flag.
func joinNamespace(path string, nstype int) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), nstype); err != nil {
		return fmt.Errorf("joining namespace %s: %w", path, err)
	}
	return nil
}

// unmountAll removes every mount stacked on path. A path that is not a
// mount point or does not exist is fine.
func unmountAll(path string) error {
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return err
		}
	}
	return errors.New("too many stacked mounts")
}

// isNamespaceFile reports whether path is a mounted namespace file.
func isNamespaceFile(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
