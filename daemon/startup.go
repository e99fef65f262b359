package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/internal/procfs"
	"github.com/arbor-cri/arbor/services/listener"
	"github.com/arbor-cri/arbor/version"
)

// ErrAlreadyRunning means another Arbor holds the run root's lock.
var ErrAlreadyRunning = errors.New("another arbor daemon is running")

// lockRunRoot takes an exclusive lock on a file in the run root, so that a
// second daemon with the same state refuses to start before it touches
// anything. The lock is released when the returned file is closed or the
// process dies.
//
// It is a POSIX record lock, which belongs to this process alone: a child
// that inherits the descriptor without exec'ing (containers/storage forks
// one to make ID-mapped mounts) does not hold it, so a daemon killed while
// such a child lives cannot keep its successor out. (A flock would stay
// with the child.)
func lockRunRoot(runRoot string) (*os.File, error) {
	if err := os.MkdirAll(runRoot, 0o711); err != nil {
		return nil, fmt.Errorf("creating run root: %w", err)
	}
	path := filepath.Join(runRoot, "arbor.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := takeLock(f); err != nil {
		holder := lockHolder(f)
		f.Close()
		return nil, fmt.Errorf("%w (lock %s held by pid %s)", ErrAlreadyRunning, path, holder)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// takeLock takes the write lock on f. While its holder is a process that
// is exiting (a killed daemon the kernel is still tearing down), it waits
// up to orphanLockWait; a live holder fails it at once.
func takeLock(f *os.File) error {
	deadline := time.Now().Add(orphanLockWait)
	for {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
		err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
		if err == nil || !holderExiting(f) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// orphanLockWait bounds the wait for a lock held by an exiting process.
const orphanLockWait = 5 * time.Second

// holderExiting reports whether the lock on f is held by a process that
// is gone or a zombie, or no longer held.
func holderExiting(f *os.File) bool {
	pid, held := lockOwner(f)
	return !held || procfs.Exiting(pid)
}

// lockOwner returns the process the kernel reports as holding the lock on
// f.
func lockOwner(f *os.File) (pid int, held bool) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0, false
	}
	return int(lk.Pid), true
}

// killLeftoverForks kills processes that still have the run-root lock
// file open once this daemon holds the lock: they can only be copies of an
// earlier daemon forked without exec (containers/storage forks one to
// make ID-mapped mounts) that outlived it, stuck before they could arm
// their parent-death signal. They hold that daemon's sockets and would keep
// this one from serving.
func killLeftoverForks(lockPath string, log *slog.Logger) {
	for _, pid := range procfs.Holders(map[string]bool{lockPath: true}, procfs.SameExecutable) {
		err := unix.Kill(pid, unix.SIGKILL)
		log.Warn("Killed a leftover fork of an earlier daemon", "pid", pid, "error", err)
	}
}

// lockHolder names the process holding the lock on f, as the kernel
// reports it.
func lockHolder(f *os.File) string {
	pid, held := lockOwner(f)
	if !held {
		return "unknown"
	}
	return procfs.Describe(pid)
}

// bootState is what the version files tell about the node.
type bootState struct {
	rebooted bool // the volatile file is gone but the persistent one is there
	upgraded bool // the persistent file names another version
}

// readBootState compares the version files with the running version.
func readBootState(cfg *config.Config, log *slog.Logger) bootState {
	var st bootState
	old, err := os.ReadFile(cfg.PersistentVersionFile())
	if err != nil {
		return st // first start on this node: nothing to wipe
	}
	if _, err := os.Stat(cfg.VolatileVersionFile()); errors.Is(err, fs.ErrNotExist) {
		st.rebooted = true
		log.Warn("The node rebooted since the last run: its containers are gone", "file", cfg.VolatileVersionFile())
	}
	if prev, cur := strings.TrimSpace(string(old)), version.Get().Version; prev != cur {
		st.upgraded = true
		log.Info("Version changed since the last run", "previous", prev, "current", cur)
	}
	return st
}

// prepare does the start-up work that must happen before any service runs:
// the lock, the folders, a check that nobody serves the socket and the
// clean-shutdown marker. It returns whether the last stop was clean.
func prepare(cfg *config.Config, log *slog.Logger) (lock *os.File, clean bool, err error) {
	lock, err = lockRunRoot(cfg.RunRoot)
	if err != nil {
		return nil, false, err
	}
	killLeftoverForks(lock.Name(), log)
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	if err := listener.Probe(cfg.API.Listen); err != nil {
		return nil, false, err
	}
	for _, dir := range []string{cfg.Root, cfg.StateDir()} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, false, fmt.Errorf("creating state folder: %w", err)
		}
	}
	clean, err = takeCleanShutdownMarker(cfg.CleanShutdownFile())
	if err != nil {
		return nil, false, err
	}
	if _, err := os.Stat(cfg.PersistentVersionFile()); !clean && err == nil {
		// A root that has run before but left no marker: a crash.
		log.Warn("Last stop was not clean", "marker", cfg.CleanShutdownFile())
	}
	return lock, clean, nil
}

// takeCleanShutdownMarker removes the marker a clean stop leaves, and
// reports whether it was there.
func takeCleanShutdownMarker(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing clean-shutdown marker: %w", err)
	}
	return true, syncDir(filepath.Dir(path))
}

// writeCleanShutdownMarker records a clean stop durably.
func writeCleanShutdownMarker(path string) error {
	return writeFileSync(path, []byte(version.Get().Version+"\n"))
}

// writeVersionFiles records the running version on tmpfs (a missing file
// there means the node rebooted) and in the persistent root (another
// version there means an upgrade). It runs after restore, so that a crash
// during restore finds the same state again.
func writeVersionFiles(cfg *config.Config) error {
	v := version.Get().Version
	for _, f := range []string{cfg.VolatileVersionFile(), cfg.PersistentVersionFile()} {
		if err := writeFileSync(f, []byte(v+"\n")); err != nil {
			return fmt.Errorf("writing version file: %w", err)
		}
	}
	return nil
}

// writeFileSync writes a file atomically: a temporary file, fsync, rename
// and fsync of the folder.
func writeFileSync(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// setThreadLimit lets Go use 90% of the kernel's thread limit, so that a
// node with many containers does not hit Go's default of 10000 first.
func setThreadLimit(log *slog.Logger) {
	b, err := os.ReadFile("/proc/sys/kernel/threads-max")
	if err != nil {
		log.Warn("Cannot read the kernel thread limit", "error", err)
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 100 {
		return
	}
	debug.SetMaxThreads(n * 9 / 10)
	log.Debug("Thread limit set", "max_threads", n*9/10)
}
