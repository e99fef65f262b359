package cri

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/arbor-cri/arbor/network"
	"github.com/arbor-cri/arbor/sandbox"
)

// Orphan is something on the node that Arbor made and that belongs to no
// pod or container it knows: what a crash or a bug leaves behind.
type Orphan struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Path string `json:"path,omitempty"`

	remove func(context.Context) error
}

// Leaks lists the leftovers without touching them, for `arbor status
// leaks`. Objects that a call is creating at that very moment can show up
// too; a second look tells them apart.
func (s *RuntimeServer) Leaks(ctx context.Context) []Orphan { return s.findOrphans(ctx) }

func (s *RuntimeServer) findOrphans(ctx context.Context) []Orphan {
	known := map[string]bool{}
	for _, e := range s.Store.Pods.All() {
		known[e.ID] = true
	}
	for _, e := range s.Store.Containers.All() {
		known[e.ID] = true
	}
	var out []Orphan
	for _, find := range []func(context.Context, map[string]bool) []Orphan{
		s.orphanRuntime, s.orphanStorage, s.orphanFolders, s.orphanCgroups, s.orphanImageMounts,
	} {
		out = append(out, find(ctx, known)...)
	}
	return out
}

// orphanRuntime finds runtime state and conmon processes of unknown IDs.
func (s *RuntimeServer) orphanRuntime(_ context.Context, known map[string]bool) []Orphan {
	var out []Orphan
	seen := map[string]bool{}
	ids, _ := s.OCI.IDs()
	for _, id := range ids {
		if !known[id] {
			seen[id] = true
			out = append(out, Orphan{Kind: "runtime container", ID: id,
				remove: func(ctx context.Context) error { return ignoreNotFound(s.OCI.Delete(ctx, id)) }})
		}
	}
	pids, _ := s.OCI.Pids()
	for id, pid := range pids {
		if !known[id] && !seen[id] {
			out = append(out, Orphan{Kind: "conmon process", ID: id, Path: "/proc/" + strconv.Itoa(pid),
				remove: func(context.Context) error { return ignoreESRCH(syscall.Kill(pid, syscall.SIGKILL)) }})
		}
	}
	return out
}

// orphanStorage finds writable layers of unknown containers.
func (s *RuntimeServer) orphanStorage(_ context.Context, known map[string]bool) []Orphan {
	ctrs, err := s.Images.Store().Containers()
	if err != nil {
		s.log.Warn("Cannot list storage containers", "error", err)
		return nil
	}
	var out []Orphan
	for _, c := range ctrs {
		if !known[c.ID] {
			id := c.ID
			out = append(out, Orphan{Kind: "storage container", ID: id,
				remove: func(context.Context) error { return s.removeRootfs(id) }})
		}
	}
	return out
}

// orphanFolders finds exit files, pod folders, pinned namespaces, network
// namespaces and bundles of unknown IDs.
func (s *RuntimeServer) orphanFolders(_ context.Context, known map[string]bool) []Orphan {
	kinds := []struct {
		kind, dir string
		remove    func(ctx context.Context, id, path string) error
	}{
		{"exit file", filepath.Dir(s.OCI.ExitFilePath("x")), func(_ context.Context, _, p string) error { return os.Remove(p) }},
		{"pod folder", filepath.Join(s.RunRoot, "pods"), func(_ context.Context, _, p string) error {
			return errors.Join(sandbox.UnmountShm(filepath.Join(p, shmDir)), os.RemoveAll(p))
		}},
		{"pinned namespaces", filepath.Join(s.RunRoot, "ns"), func(_ context.Context, _, p string) error {
			return sandbox.UnpinNamespaces(sandbox.Namespaces{Dir: p})
		}},
		// Staged ID-mapped mounts live only while a create runs.
		{"ID-mapped mounts", filepath.Join(s.RunRoot, "idmap"), func(_ context.Context, _, p string) error { return unstageIDMappedMounts(p) }},
		{"network namespace", s.Network.Config().NetNSDir, func(ctx context.Context, id, p string) error {
			return errors.Join(s.Network.Teardown(ctx, network.Pod{ID: id, NetNSPath: p}), s.Network.RemoveNetNS(p))
		}},
		{"bundle", filepath.Join(s.RunRoot, "containers"), func(_ context.Context, _, p string) error { return os.RemoveAll(p) }},
	}
	var out []Orphan
	for _, k := range kinds {
		entries, _ := os.ReadDir(k.dir)
		for _, e := range entries {
			id, path, remove := e.Name(), filepath.Join(k.dir, e.Name()), k.remove
			if known[id] || strings.HasPrefix(id, ".") {
				continue
			}
			out = append(out, Orphan{Kind: k.kind, ID: id, Path: path,
				remove: func(ctx context.Context) error { return remove(ctx, id, path) }})
		}
	}
	return out
}

// orphanCgroups finds empty container cgroup folders (arbor-<id>) of
// unknown IDs below the cgroup parents of known pods. Folders elsewhere
// may belong to another runtime on the node (an exited container's cgroup
// is empty until it is removed), so they are not claimed.
func (s *RuntimeServer) orphanCgroups(_ context.Context, known map[string]bool) []Orphan {
	parents := map[string]bool{}
	for _, e := range s.Store.Pods.All() {
		if p := sandbox.CgroupParent(e.Get().Config); p != "" {
			parents[p] = true
		}
	}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	var out []Orphan
	for parent := range parents {
		for _, root := range roots {
			entries, _ := os.ReadDir(filepath.Join(root, parent))
			for _, e := range entries {
				id, ok := strings.CutPrefix(e.Name(), "arbor-")
				p := filepath.Join(root, parent, e.Name())
				if !ok || !e.IsDir() || len(id) != 64 || known[id] || !cgroupEmpty(p) {
					continue
				}
				out = append(out, Orphan{Kind: "cgroup", ID: id, Path: p,
					remove: func(context.Context) error { return ignoreNotExist(os.Remove(p)) }})
			}
		}
	}
	return out
}

func ignoreESRCH(err error) error {
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// cgroupEmpty reports whether a cgroup folder has no processes and no
// child cgroups.
func cgroupEmpty(dir string) bool {
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil || len(strings.TrimSpace(string(procs))) > 0 {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() {
			return false
		}
	}
	return true
}
