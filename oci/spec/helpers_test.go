package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/sys/capability"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeHost is this project's reference node: cgroup v1 without hugetlb and
// a bounding set lacking CAP_SYS_RESOURCE.
func fakeHost() Host {
	var bnd []string
	for _, c := range allKnownCapNames() {
		if c != "CAP_SYS_RESOURCE" {
			bnd = append(bnd, c)
		}
	}
	return Host{
		BoundingCaps:     bnd,
		CgroupVersion:    CgroupV1,
		Controllers:      []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio"},
		SeccompAvailable: true,
		NofileHardLimit:  20000,
	}
}

// allKnownCapNames lists every capability name the library knows.
func allKnownCapNames() []string {
	return capNames(^uint64(0))
}

// writeFile creates a file with parents under dir.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseInput is a minimal valid container input on a temp rootfs.
func baseInput(t *testing.T) ContainerInput {
	t.Helper()
	return ContainerInput{
		ID:         "c1",
		SandboxID:  "s1",
		RootfsPath: t.TempDir(),
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Command:  []string{"/bin/true"},
			Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
		},
		Sandbox: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "uid-1"},
			Hostname: "pod-host",
			Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/pod1"},
		},
		Namespaces: NamespacePaths{Network: "/proc/1/ns/net", IPC: "/proc/1/ns/ipc", UTS: "/proc/1/ns/uts", PID: "/proc/1/ns/pid"},
		Host:       fakeHost(),
	}
}

// equalSets compares string slices ignoring order.
func equalSets(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// allKnownCaps lists the capabilities the library knows.
func allKnownCaps() []capability.Cap { return capability.ListKnown() }
