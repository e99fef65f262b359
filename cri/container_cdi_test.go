package cri

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/testcdi"
)

// writeCDISpec writes the test CDI spec (testcdi.WriteSpec) into dir.
func writeCDISpec(t *testing.T, dir, mountSrc string) {
	t.Helper()
	if err := testcdi.WriteSpec(dir, mountSrc); err != nil {
		t.Fatal(err)
	}
}

func newCDIServer(t *testing.T, dirs ...string) *RuntimeServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := NewCDI(dirs, log)
	mustOK(t, err)
	return NewRuntimeServer(RuntimeInfo{}, Deps{CDI: r}, log)
}

func baseSpec() *rspec.Spec {
	return &rspec.Spec{Process: &rspec.Process{Env: []string{"PATH=/bin"}}, Linux: &rspec.Linux{}}
}

func TestInjectCDIDevices(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	writeCDISpec(t, dir, data)
	s := newCDIServer(t, filepath.Join(t.TempDir(), "missing"), dir)
	cases := []struct {
		name string
		cfg  *runtimeapi.ContainerConfig
	}{
		{"cdi_devices field", &runtimeapi.ContainerConfig{CDIDevices: []*runtimeapi.CDIDevice{{Name: "vendor.test/dev=null"}}}},
		{"annotation", &runtimeapi.ContainerConfig{Annotations: map[string]string{"cdi.k8s.io/test": "vendor.test/dev=null"}}},
		{"both, deduplicated", &runtimeapi.ContainerConfig{
			CDIDevices:  []*runtimeapi.CDIDevice{{Name: "vendor.test/dev=null"}},
			Annotations: map[string]string{"cdi.k8s.io/test": "vendor.test/dev=null"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := baseSpec()
			mustOK(t, s.injectCDIDevices(context.Background(), c.cfg, "ctr", sp))
			checkXNull(t, sp, data)
		})
	}
}

func checkXNull(t *testing.T, sp *rspec.Spec, data string) {
	t.Helper()
	if len(sp.Linux.Devices) != 1 {
		t.Fatalf("devices %+v, want one", sp.Linux.Devices)
	}
	d := sp.Linux.Devices[0]
	if d.Path != "/dev/xnull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
		t.Errorf("device %+v, want /dev/xnull c 1:3", d)
	}
	allowed := slices.ContainsFunc(sp.Linux.Resources.Devices, func(r rspec.LinuxDeviceCgroup) bool {
		return r.Allow && r.Type == "c" && r.Major != nil && *r.Major == 1 && r.Minor != nil && *r.Minor == 3
	})
	if !allowed {
		t.Errorf("device cgroup rules %+v do not allow c 1:3", sp.Linux.Resources.Devices)
	}
	if !slices.Contains(sp.Process.Env, "XNULL=present") || !slices.Contains(sp.Process.Env, "PATH=/bin") {
		t.Errorf("env %q, want XNULL=present added to PATH", sp.Process.Env)
	}
	mounted := slices.ContainsFunc(sp.Mounts, func(m rspec.Mount) bool {
		return m.Destination == "/xnull-data" && m.Source == data && slices.Contains(m.Options, "ro")
	})
	if !mounted {
		t.Errorf("mounts %+v, want %s read-only at /xnull-data", sp.Mounts, data)
	}
}

func TestInjectCDIDevicesRefuses(t *testing.T) {
	dir := t.TempDir()
	writeCDISpec(t, dir, t.TempDir())
	cases := []struct {
		name   string
		server *RuntimeServer
		cfg    *runtimeapi.ContainerConfig
		want   string
	}{
		{"unknown device", newCDIServer(t, dir),
			&runtimeapi.ContainerConfig{CDIDevices: []*runtimeapi.CDIDevice{{Name: "vendor.test/dev=null"}, {Name: "vendor.test/dev=nope"}}},
			"vendor.test/dev=nope"},
		{"unknown annotated device", newCDIServer(t, dir),
			&runtimeapi.ContainerConfig{Annotations: map[string]string{"cdi.k8s.io/x": "other.test/gpu=0"}},
			"other.test/gpu=0"},
		{"unqualified name", newCDIServer(t, dir),
			&runtimeapi.ContainerConfig{CDIDevices: []*runtimeapi.CDIDevice{{Name: "null"}}}, "cdi_devices[0]"},
		{"no CDI configured", NewRuntimeServer(RuntimeInfo{}, Deps{}, slog.New(slog.NewTextHandler(io.Discard, nil))),
			&runtimeapi.ContainerConfig{CDIDevices: []*runtimeapi.CDIDevice{{Name: "vendor.test/dev=null"}}}, "not configured"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := baseSpec()
			err := c.server.injectCDIDevices(context.Background(), c.cfg, "ctr", sp)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want InvalidArgument naming %q", err, c.want)
			}
			if len(sp.Linux.Devices) != 0 || len(sp.Mounts) != 0 || len(sp.Process.Env) != 1 {
				t.Errorf("spec changed by a refused request: %+v", sp)
			}
		})
	}
}

func TestNoCDIDevicesLeavesSpec(t *testing.T) {
	s := NewRuntimeServer(RuntimeInfo{}, Deps{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	sp := baseSpec()
	cfg := &runtimeapi.ContainerConfig{Annotations: map[string]string{"other": "x"}}
	mustOK(t, s.injectCDIDevices(context.Background(), cfg, "ctr", sp))
	if len(sp.Linux.Devices) != 0 || len(sp.Process.Env) != 1 {
		t.Errorf("spec changed without CDI requests: %+v", sp)
	}
}
