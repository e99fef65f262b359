package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RSSReport is a daemon's resident memory before and with running pods.
type RSSReport struct {
	PID         int   `json:"pid"`
	Pods        int   `json:"pods"`
	BaselineKiB int64 `json:"baseline_kib"`
	WithPodsKiB int64 `json:"with_pods_kib"`
}

// RSS makes sure the image is there, reads the VmRSS of pid (0: the
// process listening on the client's socket), brings up pods pods of one
// container, reads it again and tears the pods down.
func (c *Client) RSS(ctx context.Context, sp *Spec, pid, pods int) (*RSSReport, error) {
	if err := c.ensureImage(ctx, sp.Image); err != nil {
		return nil, err
	}
	if pid == 0 {
		var err error
		if pid, err = SocketOwner(c.Socket); err != nil {
			return nil, err
		}
	}
	r := &RSSReport{PID: pid, Pods: pods}
	var err error
	if r.BaselineKiB, err = VmRSS(pid); err != nil {
		return nil, err
	}
	made, err := c.upMany(ctx, sp, "rss", pods, 1)
	if err != nil {
		return nil, err
	}
	if r.WithPodsKiB, err = VmRSS(pid); err != nil {
		return nil, err
	}
	return r, c.downMany(ctx, sp, made)
}

// VmRSS returns the resident set size of pid in KiB.
func VmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS of pid %d: %w", pid, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("reading memory of pid %d: no VmRSS line", pid)
}

// SocketOwner returns the pid of a process holding the listening unix
// socket bound at path, found through /proc/net/unix and /proc/*/fd.
func SocketOwner(path string) (int, error) {
	inode, err := listeningInode(path)
	if err != nil {
		return 0, err
	}
	want := fmt.Sprintf("socket:[%s]", inode)
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && link == want {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("finding owner of socket %s: no process holds inode %s", path, inode)
}

// listeningInode returns the inode of the listening socket bound at path.
func listeningInode(path string) (string, error) {
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return "", fmt.Errorf("reading /proc/net/unix: %w", err)
	}
	// Num RefCount Protocol Flags Type St Inode Path; flags 00010000 is
	// __SO_ACCEPTCON, a listening socket.
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 8 && f[7] == path && f[3] == "00010000" {
			return f[6], nil
		}
	}
	return "", fmt.Errorf("finding socket %s: not listening in /proc/net/unix", path)
}
