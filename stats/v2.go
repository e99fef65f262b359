package stats

import (
	"fmt"
	"path/filepath"
)

// readV2 reads a cgroup v2 folder: cpu.stat, memory.*, pids.*, io.stat
// and the pressure files. cpu.stat is always there (its CFS counters only
// with the cpu controller); the memory, pids and io files only when their
// controllers are enabled for the folder.
func readV2(dir string, cg *Cgroup) error {
	if err := requireDir(dir); err != nil {
		return err
	}
	st, err := readKeyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return fmt.Errorf("reading cpu.stat: %w", err)
	}
	cg.CPU.UsageNs = st["usage_usec"] * 1000
	cg.CPU.UserNs, cg.CPU.SystemNs = st["user_usec"]*1000, st["system_usec"]*1000
	setCFS(&cg.CPU, st, st["throttled_usec"]*1000)
	if err := readV2Memory(dir, &cg.Memory); err != nil {
		return err
	}
	if err := readPids(dir, cg); err != nil {
		return err
	}
	if cg.IO, err = readV2IO(dir); err != nil {
		return err
	}
	cg.CPU.PSI, cg.Memory.PSI, cg.IOPSI = readPSI(dir, "cpu"), readPSI(dir, "memory"), readPSI(dir, "io")
	return nil
}

// readV2Memory reads memory.current, memory.stat and the optional limit,
// peak, swap and OOM count. RSS is anon memory and the working set is
// usage less inactive_file, as cAdvisor has it.
func readV2Memory(dir string, m *Memory) error {
	usage, ok, err := readOptionalUint(filepath.Join(dir, "memory.current"))
	if err != nil || !ok {
		return err // no memory controller here: counters stay zero
	}
	st, err := readKeyValues(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return fmt.Errorf("reading memory.stat: %w", err)
	}
	m.Usage = usage
	m.WorkingSet = sub(usage, st["inactive_file"])
	m.RSS, m.Cache = st["anon"], st["file"]
	m.PageFaults, m.MajorFaults = st["pgfault"], st["pgmajfault"]
	m.MappedFile, m.KernelUsage = st["file_mapped"], v2KernelMemory(st)
	lim, _, err := readOptionalUint(filepath.Join(dir, "memory.max"))
	if err != nil {
		return err
	}
	m.Limit = limit(lim)
	if m.MaxUsage, _, err = readOptionalUint(filepath.Join(dir, "memory.peak")); err != nil {
		return err
	}
	if m.Swap, _, err = readOptionalUint(filepath.Join(dir, "memory.swap.current")); err != nil {
		return err
	}
	ev, err := readKeyValues(filepath.Join(dir, "memory.events"))
	if err != nil {
		return err
	}
	m.OOMKills, m.Failcnt = ev["oom_kill"], ev["max"]
	return nil
}

// v2KernelMemory is memory.stat's "kernel", or on kernels before 5.18
// the sum of the kernel parts it stands for.
func v2KernelMemory(st map[string]uint64) uint64 {
	if k, ok := st["kernel"]; ok {
		return k
	}
	return st["kernel_stack"] + st["pagetables"] + st["percpu"] + st["vmalloc"] + st["slab"]
}
