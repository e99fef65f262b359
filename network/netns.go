package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsfile"
	"github.com/arbor-cri/arbor/internal/nsthread"
)

// NewNetNS creates a new network namespace that outlives any process, bind
// mounted at NetNSDir/<id>, and returns that path. The namespace has only a
// down "lo"; the loopback plugin brings it up during Setup. Nothing is left
// behind on error. It fails if a namespace named id already exists.
func (m *Manager) NewNetNS(id string) (string, error) {
	path, err := m.netNSMountPoint(id)
	if err != nil {
		return "", err
	}
	if err := nsthread.Run(func() error { return bindNewNetNS(path) }); err != nil {
		os.Remove(path)
		return "", err
	}
	m.log.Debug("Network namespace created", "netns", path)
	return path, nil
}

// AdoptNetNS pins the network namespace whose file is from (a pinned
// namespace or /proc/<pid>/ns/net) at NetNSDir/<id>, where NewNetNS would
// have made one, and returns that path; RemoveNetNS removes it. It serves
// pods with their own user namespace, whose network namespace must be
// made inside it. Nothing is left behind on error.
func (m *Manager) AdoptNetNS(id, from string) (string, error) {
	path, err := m.netNSMountPoint(id)
	if err != nil {
		return "", err
	}
	if err := unix.Mount(from, path, "none", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("bind mounting network namespace: %w", err)
	}
	m.log.Debug("Network namespace adopted", "netns", path)
	return path, nil
}

// netNSMountPoint creates the empty file NetNSDir/<id>.
func (m *Manager) netNSMountPoint(id string) (string, error) {
	if err := validateNetNSName(id); err != nil {
		return "", err
	}
	if err := os.MkdirAll(m.cfg.NetNSDir, 0o755); err != nil {
		return "", fmt.Errorf("creating netns dir: %w", err)
	}
	path := filepath.Join(m.cfg.NetNSDir, id)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("creating netns mount point: %w", err)
	}
	return path, f.Close()
}

// RemoveNetNS unmounts and removes a namespace made by NewNetNS. It succeeds
// when the path is empty, already unmounted or already removed. Paths outside
// NetNSDir are refused.
func (m *Manager) RemoveNetNS(path string) error {
	if path == "" {
		return nil
	}
	if filepath.Dir(filepath.Clean(path)) != filepath.Clean(m.cfg.NetNSDir) {
		return fmt.Errorf("removing netns %s: not in %s", path, m.cfg.NetNSDir)
	}
	if err := nsfile.UnmountAll(path); err != nil {
		return fmt.Errorf("unmounting netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing netns %s: %w", path, err)
	}
	m.log.Debug("Network namespace removed", "netns", path)
	return nil
}

func validateNetNSName(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid netns name %q", id)
	}
	return nil
}

// bindNewNetNS moves the calling (locked) thread into a new network
// namespace and bind mounts that namespace onto path.
func bindNewNetNS(path string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unsharing network namespace: %w", err)
	}
	src := nsfile.ThreadPath("net")
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mounting network namespace: %w", err)
	}
	return nil
}
