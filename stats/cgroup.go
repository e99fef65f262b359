// Package stats reads the resource usage of containers and pods: CPU,
// CFS throttling, memory, block I/O, process and PSI counters from cgroup
// v1 or v2 (cgroupfs paths), the open files of a cgroup's processes, the
// interface counters of a pod's network namespace and the disk usage
// of a container's writable layer. Collector is the long-running service
// that caches the expensive parts (disk usage) and keeps the previous CPU
// sample of every container and pod, so that the kubelet's frequent CRI
// stats calls stay cheap and can report a CPU rate.
package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoCgroup means the cgroup does not exist (the container is not
// running, or was never started).
var ErrNoCgroup = errors.New("cgroup does not exist")

// DefaultRoot is where cgroup hierarchies are mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Layout says where the controllers this package reads are mounted.
type Layout struct {
	// V2 is true when Root is a unified cgroup2 hierarchy.
	V2   bool
	Root string
	// Controllers maps a v1 controller (cpuacct, cpu, memory, pids,
	// blkio) to its hierarchy's mount point.
	Controllers map[string]string
	// Unified is the hybrid cgroup2 mount of a v1 host ("" when none); PSI
	// is read from it.
	Unified string
	// Proc is where procfs is mounted ("" means /proc); the open files of
	// a cgroup's processes are counted there.
	Proc string
	// SysDevBlock is sysfs' dev/block folder ("" means /sys/dev/block);
	// block device numbers are named from its uevent files.
	SysDevBlock string
}

// v1Candidates are the mount folder names a v1 controller may have.
var v1Candidates = map[string][]string{
	"cpuacct": {"cpuacct", "cpu,cpuacct", "cpuacct,cpu"},
	"cpu":     {"cpu", "cpu,cpuacct", "cpuacct,cpu"},
	"memory":  {"memory"},
	"pids":    {"pids"},
	"blkio":   {"blkio"},
}

// DetectLayout inspects the cgroup mounts under root.
func DetectLayout(root string) Layout {
	if exists(filepath.Join(root, "cgroup.controllers")) {
		return Layout{V2: true, Root: root}
	}
	l := Layout{Root: root, Controllers: map[string]string{}}
	for ctrl, names := range v1Candidates {
		for _, n := range names {
			if dir := filepath.Join(root, n); exists(filepath.Join(dir, "cgroup.procs")) {
				l.Controllers[ctrl] = dir
				break
			}
		}
	}
	if u := filepath.Join(root, "unified"); exists(filepath.Join(u, "cgroup.controllers")) {
		l.Unified = u
	}
	return l
}

// Cgroup is one reading of a cgroup's counters. Fields the kernel does not
// offer stay zero; a nil PSI means the kernel reports none.
type Cgroup struct {
	Timestamp time.Time
	CPU       CPU
	Memory    Memory
	// Pids is the number of tasks, threads included (pids.current);
	// PidsMax their limit (pids.max, 0 when there is none). HasPids says
	// they were read.
	Pids    uint64
	PidsMax uint64
	HasPids bool
	// IO is the block I/O per device, sorted by device number; empty when
	// the kernel accounts none to the cgroup.
	IO    []DeviceIO
	IOPSI *PSI
	// Files counts the open files of the cgroup's processes; nil when
	// they could not be listed.
	Files *Files
}

// CPU counters, in nanoseconds of CPU time since the cgroup was made.
type CPU struct {
	UsageNs  uint64
	UserNs   uint64
	SystemNs uint64
	// CFS is the bandwidth throttling record; HasCFS says the kernel
	// offers it (cgroup v1 cpu controller, or v2 with cpu enabled).
	CFS    CFS
	HasCFS bool
	PSI    *PSI
}

// CFS counts the CPU bandwidth enforcement periods of a cgroup.
type CFS struct {
	// Periods is the number of elapsed periods with runnable tasks,
	// ThrottledPeriods those in which the quota ran out.
	Periods          uint64
	ThrottledPeriods uint64
	// ThrottledNs is the total time tasks were throttled.
	ThrottledNs uint64
}

// DeviceIO is the block I/O of a cgroup on one device.
type DeviceIO struct {
	Major, Minor uint64
	// Device is the device's node ("/dev/vda"), or "major:minor" when
	// sysfs does not name it.
	Device                string
	ReadBytes, WriteBytes uint64
	Reads, Writes         uint64
}

// Files counts open file descriptors; Sockets are those naming a socket.
type Files struct {
	Descriptors, Sockets uint64
}

// Memory counters in bytes, and page fault counts.
type Memory struct {
	Usage uint64
	// WorkingSet is Usage less inactive file pages, as cAdvisor computes it.
	WorkingSet uint64
	// RSS is anonymous and swap cache memory.
	RSS         uint64
	Cache       uint64
	Swap        uint64
	MaxUsage    uint64
	PageFaults  uint64
	MajorFaults uint64
	// Limit is 0 when there is none.
	Limit    uint64
	OOMKills uint64
	// Failcnt counts the times usage hit the limit (v1 memory.failcnt, v2
	// memory.events "max").
	Failcnt uint64
	// KernelUsage is kernel memory (v1 memory.kmem.usage_in_bytes, v2
	// memory.stat "kernel"); MappedFile the mapped file pages.
	KernelUsage uint64
	MappedFile  uint64
	PSI         *PSI
}

// PSI is a pressure stall reading of one resource.
type PSI struct {
	Some, Full PSIData
}

// PSIData is one line of a pressure file; Total is in nanoseconds.
type PSIData struct {
	Total                uint64
	Avg10, Avg60, Avg300 float64
}

// Read reads the cgroup at the cgroupfs path (for example
// "/kubepods/pod1/arbor-<id>"). A cgroup that does not exist is
// ErrNoCgroup.
func (l Layout) Read(path string) (Cgroup, error) {
	rel, err := cleanPath(path)
	if err != nil {
		return Cgroup{}, err
	}
	cg := Cgroup{Timestamp: time.Now()}
	if l.V2 {
		err = readV2(filepath.Join(l.Root, rel), &cg)
	} else {
		err = l.readV1(rel, &cg)
	}
	if err != nil {
		return Cgroup{}, fmt.Errorf("reading cgroup %s: %w", path, err)
	}
	l.nameDevices(cg.IO)
	cg.Files = l.files(rel)
	return cg, nil
}

// cleanPath makes a cgroupfs path relative, refusing "..".
func cleanPath(path string) (string, error) {
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return "", fmt.Errorf("cgroup path %q: contains ..", path)
		}
	}
	return strings.TrimPrefix(filepath.Clean("/"+path), "/"), nil
}

// readPSI reads the pressure files of resource (cpu, memory, io) in dir;
// nil when the kernel has none there.
func readPSI(dir, resource string) *PSI {
	data, err := readFile(filepath.Join(dir, resource+".pressure"))
	if err != nil {
		return nil
	}
	p, err := ParsePSI(string(data))
	if err != nil {
		return nil
	}
	return p
}

// requireDir maps a missing cgroup folder to ErrNoCgroup.
func requireDir(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNoCgroup
		}
		return err
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
