package cri

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// fakeHierarchy makes root/<parts...> holding empty interface files.
func fakeHierarchy(t *testing.T, dir string, files ...string) {
	t.Helper()
	mustOK(t, os.MkdirAll(dir, 0o755))
	for _, f := range files {
		mustOK(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	mustOK(t, err)
	return string(b)
}

func TestApplyPodLimits(t *testing.T) {
	limits := &runtimeapi.LinuxContainerResources{
		CpuShares: 1024, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 256 << 20,
		CpusetCpus: "0", CpusetMems: "0",
	}
	t.Run("cgroup v1", func(t *testing.T) {
		root := t.TempDir()
		fakeHierarchy(t, filepath.Join(root, "cpu", "kube/pod1"), "cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us")
		fakeHierarchy(t, filepath.Join(root, "memory", "kube/pod1"), "memory.limit_in_bytes")
		fakeHierarchy(t, filepath.Join(root, "cpuset", "kube/pod1"), "cpuset.cpus", "cpuset.mems")
		fakeHierarchy(t, filepath.Join(root, "pids"), "pids.max") // no pod folder here
		mustOK(t, applyPodLimits(root, "/kube/pod1", limits))
		want := map[string]string{
			"cpu/kube/pod1/cpu.shares": "1024", "cpu/kube/pod1/cpu.cfs_quota_us": "50000",
			"cpu/kube/pod1/cpu.cfs_period_us": "100000", "memory/kube/pod1/memory.limit_in_bytes": "268435456",
			"cpuset/kube/pod1/cpuset.cpus": "0", "cpuset/kube/pod1/cpuset.mems": "0",
		}
		checkFiles(t, root, want)
		if _, err := os.Stat(filepath.Join(root, "cpu/kube/pod1/memory.max")); err == nil {
			t.Error("a cgroup interface file was created")
		}
	})
	t.Run("cgroup v2", func(t *testing.T) {
		root := t.TempDir()
		fakeHierarchy(t, root, "cgroup.controllers")
		fakeHierarchy(t, filepath.Join(root, "kube/pod1"), "cpu.max", "cpu.weight", "memory.max", "cpuset.cpus", "cpuset.mems")
		mustOK(t, applyPodLimits(root, "kube/pod1", limits))
		checkFiles(t, root, map[string]string{
			"kube/pod1/cpu.max": "50000 100000", "kube/pod1/cpu.weight": "39",
			"kube/pod1/memory.max": "268435456", "kube/pod1/cpuset.cpus": "0",
		})
	})
	t.Run("parent missing everywhere", func(t *testing.T) {
		root := t.TempDir()
		fakeHierarchy(t, filepath.Join(root, "memory"), "memory.limit_in_bytes")
		if err := applyPodLimits(root, "/kube/gone", limits); err == nil {
			t.Fatal("no error for a parent that exists in no hierarchy")
		}
	})
	t.Run("parent with ..", func(t *testing.T) {
		if err := applyPodLimits(t.TempDir(), "/kube/../../etc", limits); err == nil {
			t.Fatal("no error for a parent with ..")
		}
	})
}

func checkFiles(t *testing.T, root string, want map[string]string) {
	t.Helper()
	for path, v := range want {
		if got := readFile(t, filepath.Join(root, path)); got != v {
			t.Errorf("%s = %q, want %q", path, got, v)
		}
	}
}

func TestPodLimits(t *testing.T) {
	cases := []struct {
		name          string
		sum, overhead *runtimeapi.LinuxContainerResources
		want          *runtimeapi.LinuxContainerResources
	}{
		{"sum only", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 100}, nil,
			&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 100}},
		{"overhead added", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 100, CpuShares: 200, CpuQuota: 1000},
			&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 10, CpuShares: 20, CpuQuota: 100, CpuPeriod: 5000},
			&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 110, CpuShares: 220, CpuQuota: 1100, CpuPeriod: 5000}},
		{"unlimited stays unlimited", &runtimeapi.LinuxContainerResources{},
			&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 10},
			&runtimeapi.LinuxContainerResources{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := podLimits(c.sum, c.overhead)
			if got.String() != c.want.String() {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestUpdatePodSandboxResourcesRecords(t *testing.T) {
	st, err := store.Open(t.TempDir())
	mustOK(t, err)
	s := NewRuntimeServer(RuntimeInfo{}, Deps{Store: st}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pod := store.Pod{ID: strings.Repeat("a", 64), Name: "p", Config: &runtimeapi.PodSandboxConfig{},
		State: runtimeapi.PodSandboxState_SANDBOX_READY}
	s.Store.Pods.Add(pod.ID, pod)
	ctx := context.Background()

	_, err = s.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "b" + pod.ID[1:],
		Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}})
	if code := status.Code(toStatus(err)); code != codes.NotFound {
		t.Errorf("unknown pod: code %v (%v), want NotFound", code, err)
	}
	_, err = s.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: pod.ID,
		Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}})
	mustOK(t, err)
	e, err := s.Store.Pods.Lookup(pod.ID)
	mustOK(t, err)
	if got := e.Get().Resources.GetMemoryLimitInBytes(); got != 1<<20 {
		t.Errorf("recorded memory limit %d, want %d", got, 1<<20)
	}
	pods, _, _, err := st.LoadRecords()
	mustOK(t, err)
	if got := pods[pod.ID].Resources.GetMemoryLimitInBytes(); got != 1<<20 {
		t.Errorf("saved memory limit %d, want %d", got, 1<<20)
	}
}
