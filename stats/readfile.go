package stats

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// readFile reads a small kernel file (a cgroup, procfs or sysfs one) with
// plain system calls. os.ReadFile costs twice as many on these: it stats
// the file and registers the descriptor with the runtime's poller, which
// accepts pollable kernfs files. A stats call reads some twenty files per
// container, so this is most of its work. Errors are *fs.PathError, as
// from os.ReadFile.
func readFile(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
