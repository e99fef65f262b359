package sandbox

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func podWithNamespaces(opts *runtimeapi.NamespaceOption) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: opts},
	}}
}

func TestNeedsInfra(t *testing.T) {
	const (
		pod       = runtimeapi.NamespaceMode_POD
		container = runtimeapi.NamespaceMode_CONTAINER
		node      = runtimeapi.NamespaceMode_NODE
		target    = runtimeapi.NamespaceMode_TARGET
	)
	tests := []struct {
		name string
		cfg  *runtimeapi.PodSandboxConfig
		want bool
	}{
		{name: "nil config defaults to shared pid", cfg: nil, want: true},
		{name: "shared pid", cfg: podWithNamespaces(&runtimeapi.NamespaceOption{Pid: pod}), want: true},
		{name: "pid per container", cfg: podWithNamespaces(&runtimeapi.NamespaceOption{Pid: container}), want: false},
		{name: "host pid", cfg: podWithNamespaces(&runtimeapi.NamespaceOption{Pid: node, Network: node, Ipc: node}), want: false},
		{name: "target pid", cfg: podWithNamespaces(&runtimeapi.NamespaceOption{Pid: target, TargetId: "c1"}), want: false},
		{name: "pod user namespace", cfg: podWithNamespaces(&runtimeapi.NamespaceOption{Pid: container,
			UsernsOptions: &runtimeapi.UserNamespace{Mode: pod}}), want: false},
		{name: "host user namespace", cfg: podWithNamespaces(&runtimeapi.NamespaceOption{Pid: container,
			UsernsOptions: &runtimeapi.UserNamespace{Mode: node}}), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsInfra(tc.cfg); got != tc.want {
				t.Errorf("NeedsInfra = %v, want %v", got, tc.want)
			}
		})
	}
}
