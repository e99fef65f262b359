package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// TestMarker is in every path the e2e tests make (temporary folders,
// cgroup parents), so that leftovers can be told from the host's own.
const TestMarker = "arbor-e2e-"

var (
	madeMu  sync.Mutex
	made    []string // folders this process's daemons used
	cgroups []string // cgroup parents this process's tests used
)

// RememberCgroup records a cgroup parent a test gives its pods, so that
// HostLeaks checks it at the end.
func RememberCgroup(parent string) {
	madeMu.Lock()
	defer madeMu.Unlock()
	cgroups = append(cgroups, strings.TrimPrefix(parent, "/"))
}

func remember(dir string) {
	madeMu.Lock()
	defer madeMu.Unlock()
	made = append(made, dir)
}

// HostLeaks lists mounts and processes under the folders of the daemons
// this test process ran, and the cgroup parents its tests used, that are
// still there; empty means none.
func HostLeaks() string {
	madeMu.Lock()
	dirs := append([]string(nil), made...)
	parents := append([]string(nil), cgroups...)
	madeMu.Unlock()
	var b strings.Builder
	for _, dir := range dirs {
		for _, m := range MountsUnder(dir) {
			fmt.Fprintf(&b, "mount: %s\n", m)
		}
		for _, p := range ProcessesMatching(dir) {
			fmt.Fprintf(&b, "process: %s\n", p)
		}
	}
	for _, parent := range parents {
		for _, c := range CgroupsMatching(parent) {
			fmt.Fprintf(&b, "cgroup: %s\n", c)
		}
	}
	return b.String()
}

// unmountUnder lazily unmounts everything below dir, deepest first: what a
// killed daemon leaves (it is the restarted daemon's job to clean up in
// production, but a test that ends must not leave it on the host).
func unmountUnder(dir string) {
	mounts := MountsUnder(dir)
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
}

// MountsUnder returns the mount points whose path contains s.
func MountsUnder(s string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"cannot read mountinfo: " + err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.Contains(f[4], s) {
			out = append(out, f[4])
		}
	}
	return out
}

// ProcessesMatching returns "pid cmdline" of processes whose command line
// contains s, other than this one.
func ProcessesMatching(s string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		pid := filepath.Base(d)
		if pid == fmt.Sprint(os.Getpid()) {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(string(cmd), s) {
			continue
		}
		out = append(out, pid+" "+strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
	}
	return out
}

// CgroupsMatching returns cgroup folders whose path contains s, in every
// hierarchy.
func CgroupsMatching(s string) []string {
	var out []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Contains(filepath.Base(p), s) {
				out = append(out, p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}
