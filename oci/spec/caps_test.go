package spec

import (
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCapabilities(t *testing.T) {
	h := fakeHost()
	tests := []struct {
		name        string
		caps        *runtimeapi.Capability
		privileged  bool
		want        []string
		wantAmbient []string
		wantErr     string
	}{
		{"defaults", nil, false, DefaultCaps, nil, ""},
		{"add and drop", &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "cap_sys_time"}, DropCapabilities: []string{"KILL", "CAP_CHOWN"}},
			false, []string{"CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_SYS_TIME"}, nil, ""},
		{"add ALL is the bounding set", &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}, false, h.BoundingCaps, nil, ""},
		{"add ALL drop one", &runtimeapi.Capability{AddCapabilities: []string{"all"}, DropCapabilities: []string{"SYS_ADMIN"}}, false,
			slices.DeleteFunc(slices.Clone(h.BoundingCaps), func(c string) bool { return c == "CAP_SYS_ADMIN" }), nil, ""},
		{"drop ALL then add", &runtimeapi.Capability{AddCapabilities: []string{"NET_RAW"}, DropCapabilities: []string{"ALL"}}, false, []string{"CAP_NET_RAW"}, nil, ""},
		{"privileged is the bounding set", &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}, true, h.BoundingCaps, nil, ""},
		{"ambient", &runtimeapi.Capability{AddAmbientCapabilities: []string{"NET_RAW"}}, false, append(slices.Clone(DefaultCaps), "CAP_NET_RAW"), []string{"CAP_NET_RAW"}, ""},
		{"not in bounding set", &runtimeapi.Capability{AddCapabilities: []string{"SYS_RESOURCE"}}, false, nil, nil, "CAP_SYS_RESOURCE is not in the runtime's bounding set"},
		{"unknown", &runtimeapi.Capability{DropCapabilities: []string{"FLY"}}, false, nil, nil, "drop_capabilities"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Capabilities(tc.caps, tc.privileged, h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, set := range map[string][]string{"bounding": got.Bounding, "effective": got.Effective, "permitted": got.Permitted} {
				if !equalSets(set, tc.want) {
					t.Fatalf("%s = %q, want %q", name, set, tc.want)
				}
			}
			if !equalSets(got.Ambient, tc.wantAmbient) || !equalSets(got.Inheritable, tc.wantAmbient) {
				t.Fatalf("ambient %q inheritable %q, want %q", got.Ambient, got.Inheritable, tc.wantAmbient)
			}
			if slices.Contains(got.Bounding, "CAP_SYS_RESOURCE") {
				t.Fatal("granted CAP_SYS_RESOURCE, which the host lacks")
			}
		})
	}
}

func TestCapabilitiesDefaultsClampedToHost(t *testing.T) {
	h := Host{BoundingCaps: []string{"CAP_CHOWN", "CAP_KILL"}}
	got, err := Capabilities(nil, false, h)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSets(got.Bounding, []string{"CAP_CHOWN", "CAP_KILL"}) {
		t.Fatalf("bounding = %q", got.Bounding)
	}
}
