package testrootfs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MinimalSpec is an OCI config that runs args from the bundle's "rootfs"
// folder with PATH=/bin, cwd /, no new privileges, /proc mounted, its own
// PID, IPC, UTS, mount and network namespaces, and cgroupsPath. Callers
// add what their test needs.
func MinimalSpec(args []string, cgroupsPath string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: args, Env: []string{"PATH=/bin"}, Cwd: "/", NoNewPrivileges: true},
		Mounts:  []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
}

// WriteConfig writes sp as bundle/config.json (mode 0644), failing the test
// on any error. The bundle folder must exist.
func WriteConfig(t testing.TB, bundle string, sp *specs.Spec) {
	t.Helper()
	data, err := json.Marshal(sp)
	if err != nil {
		t.Fatalf("encoding config.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatalf("writing config.json: %v", err)
	}
}
