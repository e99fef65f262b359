package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/arbor-cri/arbor/internal/cgroupfs"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rmdirRetries and rmdirBackoff bound the wait for a cgroup whose last
// process just exited to become removable.
const (
	rmdirRetries = 10
	rmdirBackoff = 20 * time.Millisecond
)

// CgroupParent returns the pod's cgroup parent from its config (for the
// cgroupfs driver a path like /kubepods/burstable/pod<uid>); empty when
// the kubelet gave none.
func CgroupParent(cfg *runtimeapi.PodSandboxConfig) string {
	return cfg.GetLinux().GetCgroupParent()
}

// EnsureCgroupParent creates the cgroupfs path parent in every mounted
// hierarchy that accepts processes (each cgroup v1 controller and named
// hierarchy, and the cgroup v2 one, unified or hybrid: runc and conmon
// create cgroups in all of them) and returns the folders it created,
// shallowest first, so RemoveCgroups can remove exactly those. A new v1
// cpuset folder gets its parent's cpuset.cpus and cpuset.mems. On error
// the folders made so far are removed.
func EnsureCgroupParent(parent string) (created []string, err error) {
	rel, err := cgroupRel(parent)
	if err != nil || rel == "" {
		return nil, err
	}
	roots, err := cgroupfs.Hierarchies()
	if err != nil {
		return nil, err
	}
	for _, root := range roots {
		made, err := mkdirCgroup(root, rel)
		created = append(created, made...)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("creating cgroup %s in %s: %w", rel, root, err), RemoveCgroups(created))
		}
	}
	return created, nil
}

// MissingCgroupFolders returns the folders that EnsureCgroupParent(parent)
// would create now: those of the path that do not exist yet, in every
// hierarchy, shallowest first. A create records them before it makes
// them, so that a crash half-way leaves no folder restore does not know.
func MissingCgroupFolders(parent string) ([]string, error) {
	rel, err := cgroupRel(parent)
	if err != nil || rel == "" {
		return nil, err
	}
	roots, err := cgroupfs.Hierarchies()
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, root := range roots {
		dir := root
		for _, part := range strings.Split(rel, "/") {
			dir = filepath.Join(dir, part)
			if !fileExists(dir) {
				missing = append(missing, dir)
			}
		}
	}
	return missing, nil
}

// cgroupRel cleans a cgroup parent into a relative path, refusing "..".
func cgroupRel(parent string) (string, error) {
	if parent == "" {
		return "", nil
	}
	for _, part := range strings.Split(parent, "/") {
		if part == ".." {
			return "", fmt.Errorf("cgroup parent %q: contains ..", parent)
		}
	}
	return strings.Trim(filepath.Clean("/"+parent), "/"), nil
}

// mkdirCgroup creates root/rel level by level and returns the new folders.
func mkdirCgroup(root, rel string) ([]string, error) {
	var made []string
	dir := root
	for _, part := range strings.Split(rel, "/") {
		parent := dir
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return made, err
		}
		made = append(made, dir)
		if err := cgroupfs.InheritCpuset(parent, dir); err != nil {
			return made, err
		}
	}
	return made, nil
}

// RemoveCgroups removes the folders EnsureCgroupParent created, deepest
// first. A folder that is already gone is fine; one that stays busy (it
// still has processes or child cgroups) after a short retry is reported,
// and its ancestors are then left in place without waiting on them. An
// ancestor of the pod's own folder that now holds other pods' cgroups is
// shared: it is left in place without waiting and without an error.
func RemoveCgroups(created []string) error {
	dirs := slices.Clone(created)
	slices.SortStableFunc(dirs, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	var errs []error
	var kept, shared []string
	retries := rmdirRetries
	for _, d := range dirs {
		if child := keptChild(kept, d); child != "" {
			kept = append(kept, d)
			errs = append(errs, fmt.Errorf("removing cgroup %s: child %s remains", d, child))
			continue
		}
		if keptChild(shared, d) != "" || (keptChild(dirs, d) != "" && hasChildCgroups(d)) {
			shared = append(shared, d)
			continue
		}
		if err := rmdirCgroup(d, retries); err != nil {
			kept = append(kept, d)
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			// The same folder in the other hierarchies is most likely busy
			// for the same reason: try those once, without waiting again.
			retries = 1
		}
	}
	return errors.Join(errs...)
}

// keptChild returns a folder of kept that lies below dir, or "".
func keptChild(kept []string, dir string) string {
	for _, k := range kept {
		if strings.HasPrefix(k, dir+"/") {
			return k
		}
	}
	return ""
}

// hasChildCgroups reports whether a cgroup folder has child cgroups.
func hasChildCgroups(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.IsDir() })
}

// rmdirCgroup removes one cgroup folder, trying up to retries times
// while it is busy.
func rmdirCgroup(dir string, retries int) error {
	var err error
	for i := range retries {
		err = os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !isBusy(err) {
			return err
		}
		if i+1 < retries {
			time.Sleep(rmdirBackoff * time.Duration(i+1))
		}
	}
	return fmt.Errorf("still has processes or child cgroups: %w", err)
}

// isBusy reports whether rmdir failed because the cgroup is in use.
func isBusy(err error) bool {
	return errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOTEMPTY)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
