// Package cgroupfs holds the small cgroupfs facts that the OCI layer and
// the pod sandbox layer both need: which hierarchies accept processes, and
// how a new cgroup v1 cpuset folder is made usable.
package cgroupfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Root is where cgroup hierarchies are mounted.
const Root = "/sys/fs/cgroup"

// Hierarchies lists the hierarchy roots that accept processes: Root itself
// on a pure cgroup v2 host, else each mounted v1 controller (and the v2
// hierarchy of a hybrid host).
func Hierarchies() ([]string, error) {
	if exists(filepath.Join(Root, "cgroup.procs")) {
		return []string{Root}, nil
	}
	entries, err := os.ReadDir(Root)
	if err != nil {
		return nil, fmt.Errorf("listing cgroup hierarchies: %w", err)
	}
	var roots []string
	for _, e := range entries {
		root := filepath.Join(Root, e.Name())
		if e.IsDir() && exists(filepath.Join(root, "cgroup.procs")) {
			roots = append(roots, root)
		}
	}
	return roots, nil
}

// InheritCpuset copies cpuset.cpus and cpuset.mems from parent into a new
// cgroup v1 cpuset folder, which accepts no process while they are empty.
// Folders of other controllers are left alone.
func InheritCpuset(parent, dir string) error {
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
			return fmt.Errorf("copying %s: %w", name, err)
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
