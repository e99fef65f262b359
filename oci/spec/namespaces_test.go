package spec

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nsMap indexes namespaces by type, failing on duplicates.
func nsMap(t *testing.T, nss []specs.LinuxNamespace) map[specs.LinuxNamespaceType]string {
	t.Helper()
	out := map[specs.LinuxNamespaceType]string{}
	for _, ns := range nss {
		if _, dup := out[ns.Type]; dup {
			t.Fatalf("duplicate namespace %s", ns.Type)
		}
		out[ns.Type] = ns.Path
	}
	return out
}

func TestContainerNamespaces(t *testing.T) {
	paths := NamespacePaths{Network: "/n", IPC: "/i", UTS: "/u", PID: "/p", TargetPID: "/t"}
	absent := "absent"
	tests := []struct {
		name    string
		opts    *runtimeapi.NamespaceOption
		paths   NamespacePaths
		h       Host
		want    map[specs.LinuxNamespaceType]string
		wantErr string
	}{
		{"pod everything", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}, paths, fakeHost(),
			map[specs.LinuxNamespaceType]string{specs.MountNamespace: "", specs.NetworkNamespace: "/n", specs.UTSNamespace: "/u", specs.IPCNamespace: "/i", specs.PIDNamespace: "/p", specs.CgroupNamespace: absent}, ""},
		{"container pid", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}, paths, fakeHost(),
			map[specs.LinuxNamespaceType]string{specs.PIDNamespace: ""}, ""},
		{"target pid", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "other"}, paths, fakeHost(),
			map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/t"}, ""},
		{"host everything", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE}, NamespacePaths{}, fakeHost(),
			map[specs.LinuxNamespaceType]string{specs.MountNamespace: "", specs.NetworkNamespace: absent, specs.UTSNamespace: absent, specs.IPCNamespace: absent, specs.PIDNamespace: absent}, ""},
		{"cgroup v2 gets cgroupns", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}, paths, Host{CgroupVersion: CgroupV2},
			map[specs.LinuxNamespaceType]string{specs.CgroupNamespace: ""}, ""},
		{"user namespace", &runtimeapi.NamespaceOption{}, NamespacePaths{Network: "/n", IPC: "/i", UTS: "/u", PID: "/p", User: "/us"}, fakeHost(),
			map[specs.LinuxNamespaceType]string{specs.UserNamespace: "/us"}, ""},
		{"target without id", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}, paths, fakeHost(), nil, "target_id"},
		{"missing pod netns path", &runtimeapi.NamespaceOption{}, NamespacePaths{IPC: "/i", UTS: "/u", PID: "/p"}, fakeHost(), nil, "network namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nss, err := ContainerNamespaces(tc.opts, tc.paths, tc.h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := nsMap(t, nss)
			for typ, want := range tc.want {
				p, ok := got[typ]
				if want == absent {
					if ok {
						t.Fatalf("%s present: %v", typ, nss)
					}
					continue
				}
				if !ok || p != want {
					t.Fatalf("%s = %q (present %v), want %q", typ, p, ok, want)
				}
			}
		})
	}
}

func TestSandboxNamespaces(t *testing.T) {
	got := nsMap(t, SandboxNamespaces(&runtimeapi.NamespaceOption{}, NamespacePaths{Network: "/n"}, fakeHost()))
	for typ, want := range map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/n", specs.UTSNamespace: "", specs.IPCNamespace: "", specs.PIDNamespace: "", specs.MountNamespace: ""} {
		if p, ok := got[typ]; !ok || p != want {
			t.Fatalf("%s = %q present %v", typ, p, ok)
		}
	}
	host := nsMap(t, SandboxNamespaces(&runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE}, NamespacePaths{}, fakeHost()))
	if len(host) != 1 {
		t.Fatalf("host pod namespaces = %v, want mount only", host)
	}
}
