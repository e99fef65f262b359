package cri

import (
	"os"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

func TestPodHostname(t *testing.T) {
	node, err := os.Hostname()
	if err != nil {
		t.Fatalf("reading node hostname: %v", err)
	}
	hostNet := &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}
	for _, tc := range []struct {
		name string
		cfg  *runtimeapi.PodSandboxConfig
		want string
	}{
		{"configured", &runtimeapi.PodSandboxConfig{Hostname: "web-0"}, "web-0"},
		{"none configured means the node's", &runtimeapi.PodSandboxConfig{}, node},
		{"host network means the node's", &runtimeapi.PodSandboxConfig{Hostname: "web-0", Linux: hostNet}, node},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podHostname(&store.Pod{Config: tc.cfg}); got != tc.want {
				t.Errorf("podHostname = %q, want %q", got, tc.want)
			}
		})
	}
}
