// Package diskusage measures folders as du does: the allocated blocks of
// each distinct inode, without crossing into other file systems.
package diskusage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// Usage is what a walk counted.
type Usage struct {
	// Bytes is the allocated size (blocks) of the files.
	Bytes uint64
	// Inodes counts distinct inodes.
	Inodes uint64
}

// Counter measures on the device of one folder. Its walks share the
// inodes they have seen, so a file hard-linked into two walked folders
// counts once. It is not safe for concurrent use.
type Counter struct {
	dev  uint64
	seen map[uint64]bool
}

// NewCounter returns a counter for the file system holding dir.
func NewCounter(dir string) (*Counter, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("measuring %s: %w", dir, err)
	}
	return &Counter{dev: st.Dev, seen: map[uint64]bool{}}, nil
}

// Walk counts what lies under dir, not descending into the folders skip
// names nor into other file systems (mounted root file systems). Files
// that vanish during the walk, dir included, are skipped.
func (c *Counter) Walk(ctx context.Context, dir string, skip map[string]bool) (Usage, error) {
	var u Usage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return skipVanished(err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() && path != dir && skip[path] {
			return fs.SkipDir
		}
		return c.add(d, &u)
	})
	if err != nil {
		return Usage{}, fmt.Errorf("measuring %s: %w", dir, err)
	}
	return u, nil
}

// add counts one entry unless its inode was seen or it lies on another
// device.
func (c *Counter) add(d fs.DirEntry, u *Usage) error {
	fi, err := d.Info()
	if err != nil {
		return skipVanished(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Dev != c.dev {
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	if !c.seen[st.Ino] {
		c.seen[st.Ino] = true
		u.Inodes++
		u.Bytes += uint64(st.Blocks) * 512
	}
	return nil
}

func skipVanished(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
