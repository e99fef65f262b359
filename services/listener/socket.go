package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/arbor-cri/arbor/internal/procfs"
)

// ErrInUse means another live process serves the socket path. Its socket
// file is left alone.
var ErrInUse = errors.New("socket is served by a live process")

// Probe returns ErrInUse if a process accepts connections on path. A
// socket that still answers while no process has it open belongs to a
// process that is dying (a killed daemon whose last files the kernel is
// still releasing): Probe waits up to orphanWait for it to go.
func Probe(path string) error {
	deadline := time.Now().Add(orphanWait)
	for {
		conn, err := net.DialTimeout("unix", path, 500*time.Millisecond)
		if err != nil {
			return nil
		}
		conn.Close()
		holders := socketHolders(path)
		if len(holders) > 0 || time.Now().After(deadline) {
			if len(holders) == 0 {
				holders = []string{"no process found"}
			}
			return fmt.Errorf("%s: %w (listening socket open in %s)", path, ErrInUse, strings.Join(holders, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// orphanWait bounds the wait for a socket that no process holds any more.
const orphanWait = 5 * time.Second

// Listen makes the socket's folder, removes a stale socket file, listens
// on path and restricts the socket to mode 0660. The socket file is
// removed when the listener is closed.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating socket folder: %w", err)
	}
	if err := Probe(path); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restricting socket mode: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking old socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

// socketHolders names the processes that have the listening socket bound
// to path open ("pid (comm, parent ppid)"); none when no live process has.
func socketHolders(path string) []string {
	var out []string
	for _, pid := range procfs.Holders(listeningInodes(path), nil) {
		out = append(out, procfs.Describe(pid))
	}
	return out
}

// listeningInodes returns "socket:[inode]" for each listening unix socket
// bound to path, in any network namespace a process is in (/proc/net/unix
// lists only one namespace's sockets).
func listeningInodes(path string) map[string]bool {
	inodes := map[string]bool{}
	seenNS := map[string]bool{}
	nets, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, ns := range nets {
		id, err := os.Readlink(ns)
		if err != nil || seenNS[id] {
			continue
		}
		seenNS[id] = true
		data, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(ns)), "net", "unix"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			// Num RefCount Protocol Flags Type St Inode Path; flag 00010000 is listening.
			if f := strings.Fields(line); len(f) == 8 && f[7] == path && f[3] == "00010000" {
				inodes["socket:["+f[6]+"]"] = true
			}
		}
	}
	return inodes
}
