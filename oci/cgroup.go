package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// moveToCgroup puts pid into cgroup path rel in every mounted hierarchy
// (cgroup v1 controllers, or the single v2 hierarchy), creating the path.
// An empty rel leaves pid where it is.
func moveToCgroup(pid int, rel string) error {
	if rel == "" {
		return nil
	}
	rel = filepath.Clean("/" + rel)
	hierarchies, err := cgroupHierarchies()
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

// cgroupHierarchies lists the hierarchy roots that accept processes.
func cgroupHierarchies() ([]string, error) {
	if fileExists(filepath.Join(cgroupRoot, "cgroup.procs")) {
		return []string{cgroupRoot}, nil
	}
	entries, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("listing cgroup hierarchies: %w", err)
	}
	var roots []string
	for _, e := range entries {
		root := filepath.Join(cgroupRoot, e.Name())
		if e.IsDir() && fileExists(filepath.Join(root, "cgroup.procs")) {
			roots = append(roots, root)
		}
	}
	return roots, nil
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
		if err := inheritCpuset(parent, dir); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
}

// inheritCpuset copies cpuset.cpus and cpuset.mems from parent when a new
// cgroup v1 cpuset has none (it accepts no process otherwise).
func inheritCpuset(parent, dir string) error {
	for _, name := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(cur)) > 0 {
			continue
		}
		val, err := os.ReadFile(filepath.Join(parent, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), val, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
