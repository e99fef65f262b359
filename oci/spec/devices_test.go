package spec

import (
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCRIDevices(t *testing.T) {
	dir := t.TempDir()
	regular := writeFile(t, dir, "f", "x")
	tests := []struct {
		name    string
		dev     *runtimeapi.Device
		wantErr string
	}{
		{"null", &runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/xnull", Permissions: "rw"}, ""},
		{"regular file", &runtimeapi.Device{HostPath: regular, ContainerPath: "/dev/f", Permissions: "rw"}, "not a device node"},
		{"missing", &runtimeapi.Device{HostPath: filepath.Join(dir, "nope"), ContainerPath: "/dev/n"}, "devices[0].host_path"},
		{"bad permissions", &runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/n", Permissions: "rx"}, "permissions"},
		{"relative container path", &runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "n"}, "container_path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			devs, rules, err := CRIDevices([]*runtimeapi.Device{tc.dev})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, r := devs[0], rules[0]
			if d.Path != "/dev/xnull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
				t.Fatalf("device = %+v", d)
			}
			if !r.Allow || r.Type != "c" || *r.Major != 1 || *r.Minor != 3 || r.Access != "rw" {
				t.Fatalf("rule = %+v", r)
			}
		})
	}
}

func TestHostDevices(t *testing.T) {
	devs, rules, err := HostDevices()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range devs {
		if d.Path == "/dev/null" && d.Major == 1 && d.Minor == 3 {
			found = true
		}
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Fatalf("unexpected host device %s", d.Path)
		}
	}
	if !found {
		t.Fatal("/dev/null not among host devices")
	}
	if len(rules) != 1 || !rules[0].Allow || rules[0].Access != "rwm" || rules[0].Type != "" {
		t.Fatalf("rules = %+v, want allow all", rules)
	}
}
