package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// onThrowawayThread runs fn on a locked OS thread of a new goroutine and
// waits for it. The thread is never unlocked: fn may move it into other
// namespaces, so the Go runtime must terminate the thread when the
// goroutine returns instead of reusing it for other goroutines.
//
// The runtime cannot terminate the main thread (it wedges it instead, and
// /proc/self/ns and /proc/self/net then show the pod's namespaces for the
// whole process), so fn never runs there: a goroutine that lands on the
// main thread keeps it locked, so it cannot be picked again, and hands fn
// to another goroutine.
func onThrowawayThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if !onMainThread() {
			errc <- fn()
			return
		}
		inner := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			inner <- fn()
		}()
		err := <-inner
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// onMainThread reports whether the calling thread is the process leader.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }

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
