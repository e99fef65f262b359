package stats

import (
	"errors"
	"fmt"
	"path/filepath"
)

// userHZ is the unit of cpuacct.stat (USER_HZ ticks per second).
const userHZ = 100

// readV1 reads the v1 controllers of the cgroup rel. The cpuacct and
// memory folders must exist; cpu, pids, blkio and the hybrid PSI files are
// optional.
func (l Layout) readV1(rel string, cg *Cgroup) error {
	cpuDir, memDir := l.v1Dir("cpuacct", rel), l.v1Dir("memory", rel)
	if cpuDir == "" || memDir == "" {
		return errors.New("cgroup v1 cpuacct or memory hierarchy is not mounted")
	}
	if err := requireDir(cpuDir); err != nil {
		return err
	}
	if err := readV1CPU(cpuDir, &cg.CPU); err != nil {
		return err
	}
	if err := readV1Memory(memDir, &cg.Memory); err != nil {
		return err
	}
	if err := readV1CFS(l.v1Dir("cpu", rel), &cg.CPU); err != nil {
		return err
	}
	if err := readPids(l.v1Dir("pids", rel), cg); err != nil {
		return err
	}
	if dir := l.v1Dir("blkio", rel); dir != "" {
		var err error
		if cg.IO, err = readV1IO(dir); err != nil {
			return err
		}
	}
	if l.Unified != "" {
		u := filepath.Join(l.Unified, rel)
		cg.CPU.PSI, cg.Memory.PSI, cg.IOPSI = readPSI(u, "cpu"), readPSI(u, "memory"), readPSI(u, "io")
	}
	return nil
}

// v1Dir is the folder of rel in controller ctrl's hierarchy, "" when the
// controller is not mounted.
func (l Layout) v1Dir(ctrl, rel string) string {
	root, ok := l.Controllers[ctrl]
	if !ok {
		return ""
	}
	return filepath.Join(root, rel)
}

// readV1CPU reads cpuacct.usage and the user/system split, from
// cpuacct.usage_user/usage_sys (ns) or else cpuacct.stat (ticks).
func readV1CPU(dir string, cpu *CPU) error {
	usage, err := readUint(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		return fmt.Errorf("reading cpuacct.usage: %w", err)
	}
	cpu.UsageNs = usage
	user, okU, err := readOptionalUint(filepath.Join(dir, "cpuacct.usage_user"))
	if err != nil {
		return err
	}
	sys, okS, err := readOptionalUint(filepath.Join(dir, "cpuacct.usage_sys"))
	if err != nil {
		return err
	}
	if okU && okS {
		cpu.UserNs, cpu.SystemNs = user, sys
		return nil
	}
	st, err := readKeyValues(filepath.Join(dir, "cpuacct.stat"))
	if err != nil {
		return fmt.Errorf("reading cpuacct.stat: %w", err)
	}
	cpu.UserNs, cpu.SystemNs = st["user"]*1e9/userHZ, st["system"]*1e9/userHZ
	return nil
}

// readV1CFS reads the cpu controller's cpu.stat (throttled_time in ns);
// no folder or no file leaves HasCFS false.
func readV1CFS(dir string, cpu *CPU) error {
	if dir == "" {
		return nil
	}
	st, err := readKeyValues(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return fmt.Errorf("reading cpu.stat: %w", err)
	}
	setCFS(cpu, st, st["throttled_time"])
	return nil
}

// setCFS fills the CFS counters from cpu.stat keys when the kernel
// reports periods; throttledNs is the throttled time in nanoseconds.
func setCFS(cpu *CPU, st map[string]uint64, throttledNs uint64) {
	if _, ok := st["nr_periods"]; !ok {
		return
	}
	cpu.CFS = CFS{Periods: st["nr_periods"], ThrottledPeriods: st["nr_throttled"], ThrottledNs: throttledNs}
	cpu.HasCFS = true
}

// readV1Memory reads usage, limit and memory.stat's hierarchical totals.
func readV1Memory(dir string, m *Memory) error {
	if err := requireDir(dir); err != nil {
		return err
	}
	usage, err := readUint(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return fmt.Errorf("reading memory.usage_in_bytes: %w", err)
	}
	st, err := readKeyValues(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return fmt.Errorf("reading memory.stat: %w", err)
	}
	m.Usage = usage
	m.WorkingSet = sub(usage, st["total_inactive_file"])
	m.RSS, m.Cache = st["total_rss"], st["total_cache"]
	m.PageFaults, m.MajorFaults = st["total_pgfault"], st["total_pgmajfault"]
	m.MappedFile = st["total_mapped_file"]
	if err := readV1MemoryExtras(dir, m); err != nil {
		return err
	}
	return readV1MemoryCounters(dir, m)
}

// readV1MemoryCounters reads the optional failure count and kernel memory.
func readV1MemoryCounters(dir string, m *Memory) (err error) {
	if m.Failcnt, _, err = readOptionalUint(filepath.Join(dir, "memory.failcnt")); err != nil {
		return err
	}
	m.KernelUsage, _, err = readOptionalUint(filepath.Join(dir, "memory.kmem.usage_in_bytes"))
	return err
}

// readV1MemoryExtras reads the optional limit, peak, swap and OOM count.
func readV1MemoryExtras(dir string, m *Memory) error {
	lim, _, err := readOptionalUint(filepath.Join(dir, "memory.limit_in_bytes"))
	if err != nil {
		return err
	}
	m.Limit = limit(lim)
	if m.MaxUsage, _, err = readOptionalUint(filepath.Join(dir, "memory.max_usage_in_bytes")); err != nil {
		return err
	}
	memsw, ok, err := readOptionalUint(filepath.Join(dir, "memory.memsw.usage_in_bytes"))
	if err != nil {
		return err
	}
	if ok {
		m.Swap = sub(memsw, m.Usage)
	}
	oom, err := readKeyValues(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return err
	}
	m.OOMKills = oom["oom_kill"]
	return nil
}

// readPids reads pids.current and pids.max when the folder has them.
func readPids(dir string, cg *Cgroup) error {
	if dir == "" {
		return nil
	}
	n, ok, err := readOptionalUint(filepath.Join(dir, "pids.current"))
	if err != nil {
		return err
	}
	cg.Pids, cg.HasPids = n, ok
	cg.PidsMax, _, err = readOptionalUint(filepath.Join(dir, "pids.max"))
	return err
}
