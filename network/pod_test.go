package network

import (
	"reflect"
	"testing"
)

func TestRuntimeConf(t *testing.T) {
	base := Pod{ID: "abc", Name: "web", Namespace: "prod", UID: "u-1"}
	wantArgs := [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "prod"}, {"K8S_POD_NAME", "web"},
		{"K8S_POD_INFRA_CONTAINER_ID", "abc"}, {"K8S_POD_UID", "u-1"},
	}
	tests := []struct {
		name string
		edit func(*Pod)
		caps map[string]any
	}{
		{name: "no capabilities", edit: func(*Pod) {}, caps: map[string]any{}},
		{name: "port mappings skip unmapped ports and lower protocol",
			edit: func(p *Pod) {
				p.PortMappings = []PortMapping{
					{Protocol: "UDP", ContainerPort: 53, HostPort: 5353, HostIP: "127.0.0.1"},
					{ContainerPort: 80, HostPort: 8080},
					{ContainerPort: 9090},
				}
			},
			caps: map[string]any{"portMappings": []map[string]any{
				{"protocol": "udp", "containerPort": int32(53), "hostPort": int32(5353), "hostIP": "127.0.0.1"},
				{"protocol": "tcp", "containerPort": int32(80), "hostPort": int32(8080)},
			}}},
		{name: "cgroup and bandwidth",
			edit: func(p *Pod) {
				p.CgroupParent = "/kubepods/pod1"
				p.Bandwidth = &Bandwidth{IngressRate: 1000, EgressRate: 2000}
			},
			caps: map[string]any{
				"cgroupPath": "/kubepods/pod1",
				"bandwidth": map[string]uint64{"ingressRate": 1000, "ingressBurst": 0,
					"egressRate": 2000, "egressBurst": 0},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.edit(&p)
			rt := p.runtimeConf("/run/netns/x", "eth0")
			if rt.ContainerID != "abc" || rt.NetNS != "/run/netns/x" || rt.IfName != "eth0" {
				t.Errorf("runtime conf = %+v", rt)
			}
			if !reflect.DeepEqual(rt.Args, wantArgs) {
				t.Errorf("args = %v, want %v", rt.Args, wantArgs)
			}
			if !reflect.DeepEqual(rt.CapabilityArgs, tc.caps) {
				t.Errorf("capabilities = %#v, want %#v", rt.CapabilityArgs, tc.caps)
			}
		})
	}
}
