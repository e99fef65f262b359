// Package nsfile handles the files that pin namespaces: the calling
// thread's own namespace files, bind mounts of them, and their removal.
package nsfile

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ThreadPath is the namespace file of kind ("net", "ipc", "user", ...)
// of the calling thread. The caller must have locked its OS thread.
func ThreadPath(kind string) string {
	return fmt.Sprintf("/proc/%d/task/%d/ns/%s", unix.Getpid(), unix.Gettid(), kind)
}

// IsPinned reports whether path is a mounted namespace file.
func IsPinned(path string) bool {
	if path == "" {
		return false
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// maxStacked bounds UnmountAll: no path of ours has more mounts than this
// stacked on it unless something is badly wrong.
const maxStacked = 16

// UnmountAll removes every mount stacked on path (lazily, so a namespace
// still in use stays alive for its users). A path that is not a mount
// point, or does not exist, is fine.
func UnmountAll(path string) error {
	for range maxStacked {
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
	return fmt.Errorf("%s: more than %d mounts stacked", path, maxStacked)
}
