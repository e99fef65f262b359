package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/testcdi"
)

// writeCDISpec writes the test CDI spec (testcdi.WriteSpec) into dir.
func writeCDISpec(t *testing.T, dir, mountSrc string) {
	t.Helper()
	if err := testcdi.WriteSpec(dir, mountSrc); err != nil {
		t.Fatal(err)
	}
}

func TestCDIDevices(t *testing.T) {
	specDir, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "hello"), []byte("from cdi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeCDISpec(t, specDir, data)
	pt := newPodTest(t, "--cdi-spec-dirs", specDir)
	pod := pt.podConfig("cdi")
	podID := pt.runPod(pod)

	cases := []struct {
		name string
		edit func(*runtimeapi.ContainerConfig)
	}{
		{"field", func(c *runtimeapi.ContainerConfig) {
			c.CDIDevices = []*runtimeapi.CDIDevice{{Name: "vendor.test/dev=null"}}
		}},
		{"annotation", func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{"cdi.k8s.io/e2e": "vendor.test/dev=null"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := pt.ctrConfig("cdi-"+c.name, "sleep 3600")
			c.edit(cfg)
			id := pt.createAndStart(podID, pod, cfg)
			if out := pt.exec(id, "ls", "-l", "/dev/xnull"); !strings.HasPrefix(out, "c") || !strings.Contains(out, "1,") || !strings.Contains(out, " 3 ") {
				t.Errorf("ls -l /dev/xnull: %q, want the character device 1, 3", out)
			}
			if out := pt.exec(id, "env"); !strings.Contains(out, "XNULL=present\n") {
				t.Errorf("env lacks XNULL=present:\n%s", out)
			}
			if out := pt.exec(id, "cat", "/xnull-data/hello"); out != "from cdi\n" {
				t.Errorf("mounted file reads %q", out)
			}
			pt.exec(id, "sh", "-c", "echo discard > /dev/xnull")
		})
	}

	t.Run("unknown device", func(t *testing.T) {
		cfg := pt.ctrConfig("cdi-unknown", "sleep 3600")
		cfg.CDIDevices = []*runtimeapi.CDIDevice{{Name: "vendor.test/dev=missing"}}
		_, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "vendor.test/dev=missing") {
			t.Fatalf("CreateContainer: %v, want InvalidArgument naming the device", err)
		}
		resp, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.GetContainers() {
			if c.GetMetadata().GetName() == "cdi-unknown" {
				t.Errorf("refused container %s was created", c.GetId())
			}
		}
	})
	pt.finish()
}

func TestUpdatePodSandboxResources(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("podres")
	podID := pt.runPod(pod)
	pt.createAndStart(podID, pod, pt.ctrConfig("worker", "sleep 3600"))
	parent := pod.Linux.CgroupParent

	_, err := pt.cri.UpdatePodSandboxResources(pt.ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: podID,
		Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuShares: 512, CpuQuota: 40000, CpuPeriod: 100000},
		Overhead:     &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20, CpuShares: 64},
	})
	if err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v\n%s", err, pt.d.Log())
	}
	checks := []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", fmt.Sprint(128 << 20)},
		{"cpu", "cpu.shares", "576"},
		{"cpu", "cpu.cfs_quota_us", "40000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
	}
	for _, c := range checks {
		if got := readCgroup(t, c.ctrl, parent, c.file); got != c.want {
			t.Errorf("%s/%s of the pod = %s, want %s", c.ctrl, c.file, got, c.want)
		}
	}

	_, err = pt.cri.UpdatePodSandboxResources(pt.ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20},
	})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown pod: %v, want NotFound", err)
	}
	pt.finish()
}
