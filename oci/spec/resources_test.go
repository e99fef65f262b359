package spec

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestResourcesFromCRI(t *testing.T) {
	full := &runtimeapi.LinuxContainerResources{
		CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: "0", CpusetMems: "0",
		MemoryLimitInBytes: 64 << 20,
		HugepageLimits:     []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}},
		Unified:            map[string]string{"memory.high": "1000000"},
	}
	v1 := fakeHost()
	v1Huge := fakeHost()
	v1Huge.Controllers = append(v1Huge.Controllers, "hugetlb")
	v1Huge.SwapAccounting = true
	v2 := fakeHost()
	v2.CgroupVersion = CgroupV2
	t.Run("cpu and memory", func(t *testing.T) {
		r := ResourcesFromCRI(full, v1)
		if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || r.CPU.Cpus != "0" || r.CPU.Mems != "0" {
			t.Fatalf("cpu = %+v", r.CPU)
		}
		if *r.Memory.Limit != 64<<20 || r.Memory.Swap != nil {
			t.Fatalf("memory = %+v (no swap accounting: swap must stay unset)", r.Memory)
		}
	})
	t.Run("hugepages dropped without hugetlb", func(t *testing.T) {
		if r := ResourcesFromCRI(full, v1); len(r.HugepageLimits) != 0 {
			t.Fatalf("hugepages = %+v", r.HugepageLimits)
		}
	})
	t.Run("hugepages kept with hugetlb", func(t *testing.T) {
		r := ResourcesFromCRI(full, v1Huge)
		if len(r.HugepageLimits) != 1 || r.HugepageLimits[0].Pagesize != "2MB" || r.HugepageLimits[0].Limit != 4<<20 {
			t.Fatalf("hugepages = %+v", r.HugepageLimits)
		}
	})
	t.Run("swap defaults to memory limit with accounting", func(t *testing.T) {
		if r := ResourcesFromCRI(full, v1Huge); r.Memory.Swap == nil || *r.Memory.Swap != 64<<20 {
			t.Fatalf("memory = %+v", r.Memory)
		}
		withSwap := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 10, MemorySwapLimitInBytes: 30}
		if r := ResourcesFromCRI(withSwap, v1Huge); *r.Memory.Swap != 30 {
			t.Fatalf("memory = %+v", r.Memory)
		}
	})
	t.Run("unified only on v2", func(t *testing.T) {
		if r := ResourcesFromCRI(full, v1); r.Unified != nil {
			t.Fatalf("v1 unified = %v", r.Unified)
		}
		if r := ResourcesFromCRI(full, v2); r.Unified["memory.high"] != "1000000" {
			t.Fatalf("v2 unified = %v", r.Unified)
		}
	})
	t.Run("empty", func(t *testing.T) {
		r := ResourcesFromCRI(&runtimeapi.LinuxContainerResources{}, v1)
		if r == nil || r.CPU != nil || r.Memory != nil {
			t.Fatalf("got %+v", r)
		}
		if ResourcesFromCRI(nil, v1) == nil {
			t.Fatal("nil resources returned nil")
		}
	})
}

func TestOOMScoreAdj(t *testing.T) {
	can := fakeHost()
	can.CanSetNegativeOOMScoreAdj = true
	tests := []struct {
		name        string
		req         int64
		h           Host
		want        int
		wantClamped bool
		wantErr     bool
	}{
		{"positive", 500, fakeHost(), 500, false, false},
		{"negative clamped", -998, fakeHost(), 0, true, false},
		{"negative allowed", -998, can, -998, false, false},
		{"too low", -1001, can, 0, false, true},
		{"too high", 1001, can, 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, clamped, err := OOMScoreAdj(tc.req, tc.h)
			if (err != nil) != tc.wantErr || got != tc.want || clamped != tc.wantClamped {
				t.Fatalf("got %d, %v, %v", got, clamped, err)
			}
		})
	}
}

func TestCgroupsPath(t *testing.T) {
	for parent, want := range map[string]string{"/kubepods/pod1": "/kubepods/pod1/arbor-x", "kubepods": "/kubepods/arbor-x", "": "/arbor-x"} {
		if got := CgroupsPath(parent, "x"); got != want {
			t.Fatalf("CgroupsPath(%q) = %q, want %q", parent, got, want)
		}
	}
}
