package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// cgroupFSRoot is where the cgroup hierarchies are mounted.
const cgroupFSRoot = "/sys/fs/cgroup"

// UpdatePodSandboxResources applies the pod-level limits (the sum of its
// containers' resources plus the pod's overhead) to the pod's cgroup
// parent, in every hierarchy that has the controller, and records them in
// the pod's record. A pod without a cgroup parent only records them.
// Unknown pods are NotFound; a pod that is not ready is FailedPrecondition.
func (s *RuntimeServer) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	e, err := s.Store.Pods.Lookup(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return nil, fmt.Errorf("pod sandbox %s: %w", e.ID, store.ErrNotFound)
	}
	pod := e.Get()
	if pod.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, failedPrecondition("pod sandbox %s is not ready", pod.ID)
	}
	if req.GetResources() == nil && req.GetOverhead() == nil {
		return nil, invalid("resources", "resources or overhead are required")
	}
	limits := podLimits(req.GetResources(), req.GetOverhead())
	if s.NRI != nil {
		overhead, res := spec.ResourcesFromCRI(req.GetOverhead(), s.Host), spec.ResourcesFromCRI(req.GetResources(), s.Host)
		if err := s.NRI.UpdatePodSandbox(ctx, nriPod(&pod), api.FromOCILinuxResources(overhead, nil), api.FromOCILinuxResources(res, nil)); err != nil {
			return nil, fmt.Errorf("NRI plugin refused the update: %w", err)
		}
	}
	if parent := sandbox.CgroupParent(pod.Config); parent != "" {
		if err := applyPodLimits(cgroupFSRoot, parent, limits); err != nil {
			return nil, fmt.Errorf("updating pod cgroup %s: %w", parent, err)
		}
	}
	pod = e.Update(func(p *store.Pod) { p.Resources = limits })
	if err := s.Store.SavePod(pod); err != nil {
		return nil, err
	}
	if s.NRI != nil {
		nriTold(ctx, "PostUpdatePodSandbox", pod.ID, s.NRI.PostUpdatePodSandbox(ctx, nriPod(&pod)))
	}
	Logger(ctx).Info("Pod sandbox resources updated", "pod_sandbox_id", pod.ID,
		"memory_limit", limits.GetMemoryLimitInBytes(), "cpu_shares", limits.GetCpuShares(), "cpu_quota", limits.GetCpuQuota())
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}

// podLimits adds the overhead to the containers' sum. A limit the sum
// leaves unset (zero: unlimited) stays unset; the cpuset and the CFS
// period come from the sum, or from the overhead when the sum has none.
func podLimits(sum, overhead *runtimeapi.LinuxContainerResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if sum != nil {
		out = proto.Clone(sum).(*runtimeapi.LinuxContainerResources)
	}
	if overhead == nil {
		return out
	}
	add := func(v *int64, extra int64) {
		if *v > 0 && extra > 0 {
			*v += extra
		}
	}
	add(&out.CpuShares, overhead.GetCpuShares())
	add(&out.CpuQuota, overhead.GetCpuQuota())
	add(&out.MemoryLimitInBytes, overhead.GetMemoryLimitInBytes())
	if out.CpuPeriod == 0 {
		out.CpuPeriod = overhead.GetCpuPeriod()
	}
	if out.CpusetCpus == "" {
		out.CpusetCpus = overhead.GetCpusetCpus()
	}
	if out.CpusetMems == "" {
		out.CpusetMems = overhead.GetCpusetMems()
	}
	return out
}

// cgroupSetting is one value for one cgroup interface file.
type cgroupSetting struct{ file, value string }

// cgroupSettings turns limits into interface-file writes for cgroup v1
// and v2; zero values are left alone. Each hierarchy only has the files of
// its controllers, so a write goes where its file exists. The CFS period
// is written before the quota, which must fit it.
func cgroupSettings(r *runtimeapi.LinuxContainerResources) []cgroupSetting {
	var out []cgroupSetting
	set := func(file, value string) { out = append(out, cgroupSetting{file, value}) }
	if p := r.GetCpuPeriod(); p > 0 {
		set("cpu.cfs_period_us", strconv.FormatInt(p, 10))
	}
	if q := r.GetCpuQuota(); q > 0 {
		set("cpu.cfs_quota_us", strconv.FormatInt(q, 10))
		period := r.GetCpuPeriod()
		if period <= 0 {
			period = 100000
		}
		set("cpu.max", fmt.Sprintf("%d %d", q, period))
	}
	if sh := r.GetCpuShares(); sh > 0 {
		set("cpu.shares", strconv.FormatInt(sh, 10))
		set("cpu.weight", strconv.FormatUint(sharesToWeight(uint64(sh)), 10))
	}
	if m := r.GetMemoryLimitInBytes(); m > 0 {
		set("memory.limit_in_bytes", strconv.FormatInt(m, 10))
		set("memory.max", strconv.FormatInt(m, 10))
	}
	if c := r.GetCpusetCpus(); c != "" {
		set("cpuset.cpus", c)
	}
	if m := r.GetCpusetMems(); m != "" {
		set("cpuset.mems", m)
	}
	return out
}

// sharesToWeight converts cgroup v1 cpu.shares [2, 262144] to cgroup v2
// cpu.weight [1, 10000], as runc does.
func sharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// applyPodLimits writes the limits into the folder of the cgroup parent in
// every hierarchy under root that has it. It is an error when a limit is
// asked for but no hierarchy holds the parent's folder.
func applyPodLimits(root, parent string, r *runtimeapi.LinuxContainerResources) error {
	settings := cgroupSettings(r)
	if len(settings) == 0 {
		return nil
	}
	dirs, err := parentFolders(root, parent)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return fmt.Errorf("cgroup parent %s exists in no hierarchy under %s", parent, root)
	}
	for _, dir := range dirs {
		if err := writeCgroupFiles(dir, settings); err != nil {
			return err
		}
	}
	return nil
}

// parentFolders lists root/<hierarchy>/<parent> (or root/<parent> for a
// pure cgroup v2 mount) for each hierarchy where that folder exists.
func parentFolders(root, parent string) ([]string, error) {
	rel := strings.Trim(filepath.Clean("/"+parent), "/")
	if rel == "" || slices.Contains(strings.Split(parent, "/"), "..") {
		return nil, fmt.Errorf("cgroup parent %q: not a path below the root", parent)
	}
	if isFile(filepath.Join(root, "cgroup.controllers")) {
		return existing(filepath.Join(root, rel)), nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("listing cgroup hierarchies: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, existing(filepath.Join(root, e.Name(), rel))...)
		}
	}
	return dirs, nil
}

func existing(dir string) []string {
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return []string{dir}
	}
	return nil
}

func isFile(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeCgroupFiles writes each setting whose file exists in dir.
func writeCgroupFiles(dir string, settings []cgroupSetting) error {
	for _, st := range settings {
		path := filepath.Join(dir, st.file)
		err := writeExisting(path, st.value)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing %s to %s: %w", st.value, path, err)
		}
	}
	return nil
}

// writeExisting writes value to a file that must already exist: cgroup
// interface files are never created.
func writeExisting(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	return errors.Join(err, f.Close())
}
