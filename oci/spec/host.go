package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

// CgroupVersion names the cgroup hierarchy layout containers are placed in.
type CgroupVersion int

const (
	// CgroupV1 is the legacy per-controller hierarchy (also used on hybrid hosts).
	CgroupV1 CgroupVersion = 1
	// CgroupV2 is the unified hierarchy mounted at /sys/fs/cgroup.
	CgroupV2 CgroupVersion = 2
)

// Host holds facts about the node that shape every generated spec. Tests
// build one by hand; the daemon calls DetectHost once at start.
type Host struct {
	// BoundingCaps is the daemon's capability bounding set, as "CAP_*"
	// names. "ALL" and privileged mean exactly these.
	BoundingCaps []string
	// CgroupVersion is the layout runc will use for containers.
	CgroupVersion CgroupVersion
	// Controllers lists the cgroup controllers available to containers
	// ("cpu", "memory", "hugetlb", ...).
	Controllers []string
	// SwapAccounting reports whether memory+swap limits can be set.
	SwapAccounting bool
	// CanSetNegativeOOMScoreAdj reports whether CAP_SYS_RESOURCE is in the
	// daemon's effective set; without it negative scores are clamped to 0.
	CanSetNegativeOOMScoreAdj bool
	// SeccompAvailable reports whether the kernel supports seccomp filters.
	SeccompAvailable bool
	// AppArmorEnabled reports whether the kernel has AppArmor enabled.
	AppArmorEnabled bool
	// NofileHardLimit is the daemon's hard RLIMIT_NOFILE; container limits
	// never exceed it (raising it needs CAP_SYS_RESOURCE). 0 means unknown.
	NofileHardLimit uint64
}

// HasController reports whether the named cgroup controller is available.
func (h Host) HasController(name string) bool {
	for _, c := range h.Controllers {
		if c == name {
			return true
		}
	}
	return false
}

// hasCap reports whether the "CAP_*" name is in the bounding set.
func (h Host) hasCap(name string) bool {
	for _, c := range h.BoundingCaps {
		if c == name {
			return true
		}
	}
	return false
}

// DetectHost reads the facts of the running host from /proc and /sys.
func DetectHost() (Host, error) {
	var h Host
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return h, fmt.Errorf("reading process status: %w", err)
	}
	bnd, err := statusCapMask(status, "CapBnd")
	if err != nil {
		return h, fmt.Errorf("reading bounding capabilities: %w", err)
	}
	eff, err := statusCapMask(status, "CapEff")
	if err != nil {
		return h, fmt.Errorf("reading effective capabilities: %w", err)
	}
	h.BoundingCaps = capNames(bnd)
	h.CanSetNegativeOOMScoreAdj = eff&(1<<uint(capability.CAP_SYS_RESOURCE)) != 0
	if h.CgroupVersion, h.Controllers, err = detectCgroups(); err != nil {
		return h, fmt.Errorf("detecting cgroups: %w", err)
	}
	h.SwapAccounting = detectSwapAccounting(h.CgroupVersion)
	h.SeccompAvailable = detectSeccomp()
	h.AppArmorEnabled = detectAppArmor()
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return h, fmt.Errorf("reading nofile limit: %w", err)
	}
	h.NofileHardLimit = rl.Max
	return h, nil
}

// statusCapMask returns the hex capability mask of a /proc/<pid>/status field.
func statusCapMask(status []byte, field string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && key == field {
			return strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		}
	}
	return 0, fmt.Errorf("field %s not found", field)
}

// capNames lists the "CAP_*" names of the known capabilities set in mask.
func capNames(mask uint64) []string {
	var out []string
	for _, c := range capability.ListKnown() {
		if c < 64 && mask&(1<<uint(c)) != 0 {
			out = append(out, capName(c))
		}
	}
	return out
}

// capName renders a capability as its "CAP_*" name.
func capName(c capability.Cap) string {
	return "CAP_" + strings.ToUpper(c.String())
}

// detectCgroups reports the cgroup version and the controllers containers
// can use: cgroup.controllers on v2, mounted v1 hierarchies otherwise.
func detectCgroups() (CgroupVersion, []string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return 0, nil, fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		data, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			return 0, nil, fmt.Errorf("reading cgroup.controllers: %w", err)
		}
		return CgroupV2, strings.Fields(string(data)), nil
	}
	data, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return 0, nil, fmt.Errorf("reading /proc/cgroups: %w", err)
	}
	return CgroupV1, mountedV1Controllers(data), nil
}

// mountedV1Controllers parses /proc/cgroups and keeps enabled controllers
// attached to a v1 hierarchy (hierarchy id 0 means not mounted).
func mountedV1Controllers(procCgroups []byte) []string {
	var out []string
	for _, line := range strings.Split(string(procCgroups), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[1] != "0" && f[3] == "1" {
			out = append(out, f[0])
		}
	}
	return out
}

// detectSwapAccounting reports whether memory+swap limits are writable.
func detectSwapAccounting(v CgroupVersion) bool {
	if v == CgroupV2 {
		_, err := os.Stat("/sys/fs/cgroup/memory.swap.max")
		if err == nil {
			return true
		}
		// The root cgroup has no memory.swap.max; look at a child.
		_, err = os.Stat("/sys/fs/cgroup/init.scope/memory.swap.max")
		return err == nil
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}

// detectSeccomp reports seccomp filter support: installing a filter from a
// NULL program fails with EFAULT only when filters are supported.
func detectSeccomp() bool {
	if err := unix.Prctl(unix.PR_GET_SECCOMP, 0, 0, 0, 0); errors.Is(err, unix.EINVAL) {
		return false
	}
	err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, 0, 0, 0)
	return errors.Is(err, unix.EFAULT)
}

// detectAppArmor reports whether the AppArmor LSM is enabled.
func detectAppArmor() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(data), "Y")
}
