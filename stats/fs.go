package stats

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"go.podman.io/storage"

	"github.com/arbor-cri/arbor/internal/diskusage"
)

// DiskUsage is the space taken under a folder, and the size of the file
// system holding it.
type DiskUsage struct {
	Timestamp time.Time
	// Mountpoint names the file system holding the folder, as the CRI's
	// FilesystemIdentifier does.
	Mountpoint string
	// Bytes is the allocated size (blocks) of the files; Inodes counts
	// distinct inodes.
	Bytes, Inodes uint64
	// Capacity is the file system's size in bytes; InodesTotal and
	// InodesFree its inode count and the inodes still free.
	Capacity, InodesTotal, InodesFree uint64
}

// Usage walks dir like du: allocated blocks of each distinct inode, not
// crossing into other file systems. Files that vanish during the walk are
// skipped. The file system's size and inodes are read with statfs.
func Usage(ctx context.Context, dir string) (DiskUsage, error) {
	c, err := diskusage.NewCounter(dir)
	if err != nil {
		return DiskUsage{}, err
	}
	u := DiskUsage{Timestamp: time.Now()}
	if err := statFS(dir, &u); err != nil {
		return DiskUsage{}, err
	}
	walked, err := c.Walk(ctx, dir, nil)
	if err != nil {
		return DiskUsage{}, err
	}
	u.Bytes, u.Inodes = walked.Bytes, walked.Inodes
	return u, nil
}

// statFS sets u's file system size and inode counts from statfs(dir).
func statFS(dir string, u *DiskUsage) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("reading file system of %s: %w", dir, err)
	}
	u.Capacity = st.Blocks * uint64(st.Frsize)
	u.InodesTotal, u.InodesFree = st.Files, st.Ffree
	return nil
}

// LayerFinder locates a container's writable layer.
type LayerFinder interface {
	// WritableLayer returns the folder holding the container's own
	// changes and the mount point that identifies its file system.
	WritableLayer(containerID string) (dir, mountpoint string, err error)
}

// StorageLayers finds writable layers in containers/storage: the layer's
// upper ("diff") folder for overlay, the layer folder for vfs.
type StorageLayers struct {
	Store storage.Store
}

// WritableLayer implements LayerFinder; the mount point is the storage
// graph root, as ImageFsInfo reports it.
func (s StorageLayers) WritableLayer(id string) (string, string, error) {
	c, err := s.Store.Container(id)
	if err != nil {
		return "", "", fmt.Errorf("finding storage container %s: %w", id, err)
	}
	root := s.Store.GraphRoot()
	if d, err := s.Store.GraphDriver(); err == nil {
		if md, err := d.Metadata(c.LayerID); err == nil && md["UpperDir"] != "" {
			return md["UpperDir"], root, nil
		}
	}
	switch s.Store.GraphDriverName() {
	case "overlay":
		return filepath.Join(root, "overlay", c.LayerID, "diff"), root, nil
	case "vfs":
		return filepath.Join(root, "vfs", "dir", c.LayerID), root, nil
	}
	return "", "", fmt.Errorf("finding writable layer of %s: graph driver %s is not supported", id, s.Store.GraphDriverName())
}
