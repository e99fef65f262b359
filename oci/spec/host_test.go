package spec

import (
	"os"
	"slices"
	"testing"
)

func TestMountedV1Controllers(t *testing.T) {
	in := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t1\t1\t1\nhugetlb\t0\t1\t1\nrdma\t9\t1\t0\nmemory\t4\t34\t1\n"
	if got := mountedV1Controllers([]byte(in)); !slices.Equal(got, []string{"cpuset", "cpu", "memory"}) {
		t.Fatalf("got %v", got)
	}
}

func TestStatusCapMask(t *testing.T) {
	status := []byte("Name:\tx\nCapEff:\t000001fffeffffff\nCapBnd:\t0000000000000003\n")
	bnd, err := statusCapMask(status, "CapBnd")
	if err != nil || bnd != 3 {
		t.Fatalf("got %x, %v", bnd, err)
	}
	if got := capNames(bnd); !slices.Equal(got, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE"}) {
		t.Fatalf("names %v", got)
	}
	eff, _ := statusCapMask(status, "CapEff")
	if slices.Contains(capNames(eff), "CAP_SYS_RESOURCE") || !slices.Contains(capNames(eff), "CAP_SYS_ADMIN") {
		t.Fatalf("effective names %v", capNames(eff))
	}
	if _, err := statusCapMask(status, "CapAmb"); err == nil {
		t.Fatal("missing field accepted")
	}
}

// TestDetectHost checks detection against what this process's /proc says.
func TestDetectHost(t *testing.T) {
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	bnd, _ := statusCapMask(status, "CapBnd")
	eff, _ := statusCapMask(status, "CapEff")
	if !slices.Equal(h.BoundingCaps, capNames(bnd)) || len(h.BoundingCaps) == 0 {
		t.Fatalf("bounding %v, want %v", h.BoundingCaps, capNames(bnd))
	}
	if want := slices.Contains(capNames(eff), "CAP_SYS_RESOURCE"); h.CanSetNegativeOOMScoreAdj != want {
		t.Fatalf("CanSetNegativeOOMScoreAdj = %v, want %v", h.CanSetNegativeOOMScoreAdj, want)
	}
	if h.CgroupVersion != CgroupV1 && h.CgroupVersion != CgroupV2 {
		t.Fatalf("cgroup version %d", h.CgroupVersion)
	}
	if !h.HasController("memory") {
		t.Fatalf("memory controller not detected: %v", h.Controllers)
	}
	if h.NofileHardLimit == 0 {
		t.Fatal("nofile hard limit not read")
	}
	t.Logf("host: v%d controllers=%v hugetlb=%v swap=%v negOOM=%v seccomp=%v apparmor=%v nofile=%d",
		h.CgroupVersion, h.Controllers, h.HasController("hugetlb"), h.SwapAccounting, h.CanSetNegativeOOMScoreAdj, h.SeccompAvailable, h.AppArmorEnabled, h.NofileHardLimit)
}
