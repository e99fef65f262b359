package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/arbor-cri/arbor/internal/cgroupfs"
)

// moveToCgroup puts pid into cgroup path rel in every mounted hierarchy
// (cgroup v1 controllers, or the single v2 hierarchy), creating the path.
// An empty rel leaves pid where it is.
func moveToCgroup(pid int, rel string) error {
	if rel == "" {
		return nil
	}
	rel = filepath.Clean("/" + rel)
	hierarchies, err := cgroupfs.Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		if err := joinCgroup(h, rel, pid); err != nil {
			return fmt.Errorf("moving conmon to cgroup %s: %w", rel, err)
		}
	}
	return nil
}

// joinCgroup creates root/rel level by level and writes pid to its procs.
func joinCgroup(root, rel string, pid int) error {
	dir := root
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		parent := dir
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := cgroupfs.InheritCpuset(parent, dir); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
