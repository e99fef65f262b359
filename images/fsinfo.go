package images

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/arbor-cri/arbor/internal/diskusage"
)

// FsUsage is the disk usage of one part of the store.
type FsUsage struct {
	// Mountpoint is the directory holding the data (the storage root).
	Mountpoint string
	// UsedBytes is the allocated size (blocks) of the files.
	UsedBytes uint64
	// InodesUsed counts distinct inodes.
	InodesUsed uint64
}

// FsInfo reports disk usage of the store at Timestamp: Images covers image
// layers and metadata, Containers covers container writable layers and
// their per-container directories. Mounted container root file systems
// are not descended into, and hard-linked files count once.
type FsInfo struct {
	Timestamp  time.Time
	Images     FsUsage
	Containers FsUsage
}

// FsInfo walks the store and reports its disk usage.
func (s *Service) FsInfo(ctx context.Context) (FsInfo, error) {
	root := s.store.GraphRoot()
	containerDirs, err := s.containerDirs()
	if err != nil {
		return FsInfo{}, err
	}
	info := FsInfo{Timestamp: time.Now(), Images: FsUsage{Mountpoint: root}, Containers: FsUsage{Mountpoint: root}}
	c, err := diskusage.NewCounter(root)
	if err != nil {
		return FsInfo{}, fmt.Errorf("reading storage root: %w", err)
	}
	for dir := range containerDirs {
		u, err := c.Walk(ctx, dir, nil)
		if err != nil {
			return FsInfo{}, err
		}
		info.Containers.UsedBytes += u.Bytes
		info.Containers.InodesUsed += u.Inodes
	}
	u, err := c.Walk(ctx, root, containerDirs)
	if err != nil {
		return FsInfo{}, err
	}
	info.Images.UsedBytes, info.Images.InodesUsed = u.Bytes, u.Inodes
	return info, nil
}

// containerDirs returns the directories holding container data: each
// container's writable layer and the driver's containers directory.
func (s *Service) containerDirs() (map[string]bool, error) {
	root, driver := s.store.GraphRoot(), s.store.GraphDriverName()
	dirs := map[string]bool{filepath.Join(root, driver+"-containers"): true}
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range ctrs {
		if dir := layerDir(root, driver, c.LayerID); dir != "" {
			dirs[dir] = true
		}
	}
	return dirs, nil
}

// layerDir is where a graph driver keeps a layer, or "" when unknown.
func layerDir(root, driver, id string) string {
	switch driver {
	case "overlay":
		return filepath.Join(root, "overlay", id)
	case "vfs":
		return filepath.Join(root, "vfs", "dir", id)
	}
	return ""
}
