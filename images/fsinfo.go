package images

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"
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
	var rootStat syscall.Stat_t
	if err := syscall.Stat(root, &rootStat); err != nil {
		return FsInfo{}, fmt.Errorf("reading storage root %s: %w", root, err)
	}
	u := &usageWalk{ctx: ctx, seen: map[uint64]bool{}, dev: rootStat.Dev}
	for dir := range containerDirs {
		if err := u.walk(dir, nil, &info.Containers); err != nil {
			return FsInfo{}, err
		}
	}
	if err := u.walk(root, containerDirs, &info.Images); err != nil {
		return FsInfo{}, err
	}
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

// usageWalk accumulates usage over several walks, counting each inode once.
type usageWalk struct {
	ctx  context.Context
	seen map[uint64]bool
	dev  uint64 // device of the storage root
}

// walk adds the usage under dir to into, skipping the directories in skip
// and anything on another device (mounted root file systems).
func (u *usageWalk) walk(dir string, skip map[string]bool, into *FsUsage) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return ignoreVanished(err)
		}
		if err := u.ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() && path != dir && skip[path] {
			return fs.SkipDir
		}
		return u.add(path, d, into)
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("measuring disk usage of %s: %w", dir, err)
	}
	return nil
}

// add counts one directory entry.
func (u *usageWalk) add(path string, d fs.DirEntry, into *FsUsage) error {
	fi, err := d.Info()
	if err != nil {
		return ignoreVanished(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Dev != u.dev {
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	if u.seen[st.Ino] {
		return nil
	}
	u.seen[st.Ino] = true
	into.InodesUsed++
	into.UsedBytes += uint64(st.Blocks) * 512
	return nil
}

// ignoreVanished drops errors about files removed during the walk.
func ignoreVanished(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
