package spec

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CgroupPrefix prefixes the cgroup directory of every container and sandbox.
const CgroupPrefix = "arbor-"

// CgroupsPath returns the cgroupfs path "<parent>/arbor-<id>" runc uses on
// both cgroup v1 and v2.
func CgroupsPath(parent, id string) string {
	return path.Join("/", parent, CgroupPrefix+id)
}

// ResourcesFromCRI converts CRI resources to OCI resources the host can
// enforce: zero values stay unset, hugepage limits are dropped without the
// hugetlb controller, unified entries are dropped on cgroup v1, and the
// swap limit is dropped without swap accounting. Without an explicit swap
// limit but with a memory limit and swap accounting, swap is disabled by
// setting memory+swap to the memory limit. The oom_score_adj is not part of
// OCI resources; see OOMScoreAdj. Never nil.
func ResourcesFromCRI(r *runtimeapi.LinuxContainerResources, h Host) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if r == nil {
		return out
	}
	out.CPU = cpuFromCRI(r)
	out.Memory = memoryFromCRI(r, h)
	if h.HasController("hugetlb") {
		for _, l := range r.GetHugepageLimits() {
			out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: l.GetPageSize(), Limit: l.GetLimit()})
		}
	}
	if h.CgroupVersion == CgroupV2 && len(r.GetUnified()) > 0 {
		out.Unified = make(map[string]string, len(r.GetUnified()))
		for k, v := range r.GetUnified() {
			out.Unified[k] = v
		}
	}
	return out
}

// cpuFromCRI converts the CPU fields; nil when none is set.
func cpuFromCRI(r *runtimeapi.LinuxContainerResources) *specs.LinuxCPU {
	cpu := &specs.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
	if v := r.GetCpuShares(); v > 0 {
		shares := uint64(v)
		cpu.Shares = &shares
	}
	if v := r.GetCpuQuota(); v != 0 {
		cpu.Quota = &v
	}
	if v := r.GetCpuPeriod(); v > 0 {
		period := uint64(v)
		cpu.Period = &period
	}
	if *cpu == (specs.LinuxCPU{}) {
		return nil
	}
	return cpu
}

// memoryFromCRI converts the memory fields; nil when none is set.
func memoryFromCRI(r *runtimeapi.LinuxContainerResources, h Host) *specs.LinuxMemory {
	limit := r.GetMemoryLimitInBytes()
	swap := r.GetMemorySwapLimitInBytes()
	if limit <= 0 && swap <= 0 {
		return nil
	}
	mem := &specs.LinuxMemory{}
	if limit > 0 {
		mem.Limit = &limit
	}
	if h.SwapAccounting {
		if swap <= 0 && limit > 0 {
			swap = limit
		}
		if swap > 0 {
			mem.Swap = &swap
		}
	}
	if mem.Limit == nil && mem.Swap == nil {
		return nil
	}
	return mem
}

// OOMScoreAdj validates a requested oom_score_adj and clamps a negative one
// to 0 when the host cannot set it, reporting the clamp.
func OOMScoreAdj(requested int64, h Host) (adj int, clamped bool, err error) {
	if requested < -1000 || requested > 1000 {
		return 0, false, fmt.Errorf("oom_score_adj %d: outside [-1000, 1000]", requested)
	}
	if requested < 0 && !h.CanSetNegativeOOMScoreAdj {
		return 0, true, nil
	}
	return int(requested), false, nil
}

// allowedDevicesDefault are the device cgroup rules of an unprivileged
// container: deny all, then allow mknod and the standard pseudo devices.
func allowedDevicesDefault() []specs.LinuxDeviceCgroup {
	rule := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
		if major >= 0 {
			r.Major = &major
		}
		if minor >= 0 {
			r.Minor = &minor
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule("c", -1, -1, "m"),
		rule("b", -1, -1, "m"),
		rule("c", 1, 3, "rwm"),    // null
		rule("c", 1, 5, "rwm"),    // zero
		rule("c", 1, 7, "rwm"),    // full
		rule("c", 1, 8, "rwm"),    // random
		rule("c", 1, 9, "rwm"),    // urandom
		rule("c", 5, 0, "rwm"),    // tty
		rule("c", 5, 1, "rwm"),    // console
		rule("c", 5, 2, "rwm"),    // ptmx
		rule("c", 136, -1, "rwm"), // pts
	}
}

// pidsLimit returns the pids resource for a configured limit, nil for 0.
func pidsLimit(limit int64) *specs.LinuxPids {
	if limit == 0 {
		return nil
	}
	return &specs.LinuxPids{Limit: &limit}
}

// normalizeSysctl turns "net/ipv4/ip_forward" into "net.ipv4.ip_forward".
func normalizeSysctl(name string) string {
	if strings.Contains(name, "/") && !strings.Contains(name, ".") {
		return strings.ReplaceAll(name, "/", ".")
	}
	return name
}
