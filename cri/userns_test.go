package cri

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestValidateUserNamespace(t *testing.T) {
	one := func(c, h, l uint32) []*runtimeapi.IDMapping {
		return []*runtimeapi.IDMapping{{ContainerId: c, HostId: h, Length: l}}
	}
	pod := func(u *runtimeapi.UserNamespace, edit ...func(*runtimeapi.NamespaceOption)) *runtimeapi.PodSandboxConfig {
		o := &runtimeapi.NamespaceOption{UsernsOptions: u}
		for _, e := range edit {
			e(o)
		}
		return &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: o}}}
	}
	podMode := runtimeapi.NamespaceMode_POD
	cases := []struct {
		name string
		cfg  *runtimeapi.PodSandboxConfig
		want string // "" means accepted
	}{
		{"no options", pod(nil), ""},
		{"no config", &runtimeapi.PodSandboxConfig{}, ""},
		{"node", pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}), ""},
		{
			"pod",
			pod(
				&runtimeapi.UserNamespace{
					Mode: podMode,
					Uids: one(0, 1000, 65536),
					Gids: one(0, 1000, 65536),
				},
			),
			"",
		},
		{
			"container",
			pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}),
			"mode: CONTAINER is not supported",
		},
		{
			"target",
			pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}),
			"mode: TARGET is not supported",
		},
		{
			"no gids",
			pod(&runtimeapi.UserNamespace{Mode: podMode, Uids: one(0, 1000, 10)}),
			"gids: want exactly one mapping, got 0",
		},
		{
			"root unmapped",
			pod(&runtimeapi.UserNamespace{Mode: podMode, Uids: one(1, 1000, 10), Gids: one(0, 1000, 10)}),
			"uids: container ID 0",
		},
		{
			"empty",
			pod(&runtimeapi.UserNamespace{Mode: podMode, Uids: one(0, 1000, 0), Gids: one(0, 1000, 10)}),
			"length 0",
		},
		{
			"overflow",
			pod(&runtimeapi.UserNamespace{Mode: podMode, Uids: one(0, 1<<32-10, 20), Gids: one(0, 1000, 10)}),
			"overflow",
		},
		{
			"host pid",
			pod(
				&runtimeapi.UserNamespace{Mode: podMode, Uids: one(0, 1000, 10), Gids: one(0, 1000, 10)},
				func(o *runtimeapi.NamespaceOption) { o.Pid = runtimeapi.NamespaceMode_NODE },
			),
			"node's pid namespace",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateUserNamespace(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument with %q", err, tc.want)
			}
		})
	}
}
