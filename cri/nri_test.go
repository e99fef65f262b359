package cri

import (
	"testing"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

func TestNRIPodAndContainer(t *testing.T) {
	p := &store.Pod{
		ID: "pod1", Handler: "runc", IPs: []string{"10.0.0.2"}, InfraPid: 42,
		Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1"},
			Labels:   map[string]string{"app": "web"},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/pod-u1"},
		},
		NS: store.Namespaces{Net: "/run/netns/pod1", User: "/run/ns/pod1/user"},
	}
	np := nriPod(p)
	if np.GetId() != "pod1" || np.GetName() != "web" || np.GetNamespace() != "default" || np.GetUid() != "u1" ||
		np.GetRuntimeHandler() != "runc" || np.GetPid() != 42 || np.GetIps()[0] != "10.0.0.2" || np.GetLabels()["app"] != "web" {
		t.Errorf("pod = %v", np)
	}
	nss := map[string]string{}
	for _, ns := range np.GetLinux().GetNamespaces() {
		nss[ns.GetType()] = ns.GetPath()
	}
	if len(nss) != 2 || nss["network"] != "/run/netns/pod1" || nss["user"] != "/run/ns/pod1/user" {
		t.Errorf("namespaces = %v", nss)
	}
	if np.GetLinux().GetCgroupParent() != "/kubepods/pod-u1" {
		t.Errorf("cgroup parent = %q", np.GetLinux().GetCgroupParent())
	}

	c := &store.Container{
		ID: "c1", PodID: "pod1", State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: 3, Reason: "Error",
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}},
	}
	adj := -5
	sp := &specs.Spec{
		Process: &specs.Process{Args: []string{"sh"}, Env: []string{"A=1"}, OOMScoreAdj: &adj},
		Mounts:  []specs.Mount{{Destination: "/data", Source: "/srv", Type: "bind"}},
		Linux:   &specs.Linux{CgroupsPath: "/kubepods/pod-u1/arbor-c1"},
	}
	nc := nriContainer(c, sp)
	if nc.GetName() != "app" || nc.GetState() != api.ContainerState_CONTAINER_STOPPED || nc.GetExitCode() != 3 || nc.GetStatusReason() != "Error" {
		t.Errorf("container = %v", nc)
	}
	if nc.GetArgs()[0] != "sh" || nc.GetEnv()[0] != "A=1" || nc.GetMounts()[0].GetDestination() != "/data" ||
		nc.GetLinux().GetCgroupsPath() != "/kubepods/pod-u1/arbor-c1" || nc.GetLinux().GetOomScoreAdj().GetValue() != -5 {
		t.Errorf("container from spec = %v", nc)
	}
	if bare := nriContainer(c, nil); bare.GetLinux() != nil || bare.GetArgs() != nil {
		t.Errorf("container without a spec = %v", bare)
	}
}

func TestNRIState(t *testing.T) {
	for in, want := range map[runtimeapi.ContainerState]api.ContainerState{
		runtimeapi.ContainerState_CONTAINER_CREATED: api.ContainerState_CONTAINER_CREATED,
		runtimeapi.ContainerState_CONTAINER_RUNNING: api.ContainerState_CONTAINER_RUNNING,
		runtimeapi.ContainerState_CONTAINER_EXITED:  api.ContainerState_CONTAINER_STOPPED,
		runtimeapi.ContainerState_CONTAINER_UNKNOWN: api.ContainerState_CONTAINER_UNKNOWN,
	} {
		if got := nriState(in); got != want {
			t.Errorf("nriState(%v) = %v, want %v", in, got, want)
		}
	}
}
