package nri

import (
	"errors"
	"slices"
	"testing"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testSpec() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{Args: []string{"sleep", "1"}, Env: []string{"PATH=/bin", "KEEP=1", "DROP=1"}},
		Mounts:  []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}, {Destination: "/old", Type: "bind", Source: "/tmp"}},
		Linux:   &specs.Linux{Resources: &specs.LinuxResources{}},
	}
}

func TestAdjust(t *testing.T) {
	sp := testSpec()
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("ADDED", "yes")
	adj.RemoveEnv("DROP")
	adj.SetArgs([]string{"sh", "-c", "true"})
	adj.AddAnnotation("example.com/by", "plugin")
	adj.AddMount(&api.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}})
	adj.RemoveMount("/old")
	adj.SetLinuxMemoryLimit(64 << 20)
	adj.SetLinuxCPUShares(512)
	adj.AddRlimit("RLIMIT_NOFILE", 2048, 1024)
	if err := Adjust(sp, adj, nil); err != nil {
		t.Fatal(err)
	}
	env := sp.Process.Env
	if !slices.Contains(env, "ADDED=yes") || slices.Contains(env, "DROP=1") || !slices.Contains(env, "KEEP=1") {
		t.Errorf("env = %v", env)
	}
	if !slices.Equal(sp.Process.Args, []string{"sh", "-c", "true"}) {
		t.Errorf("args = %v", sp.Process.Args)
	}
	if sp.Annotations["example.com/by"] != "plugin" {
		t.Errorf("annotations = %v", sp.Annotations)
	}
	var dests []string
	for _, m := range sp.Mounts {
		dests = append(dests, m.Destination)
	}
	if !slices.Contains(dests, "/scratch") || slices.Contains(dests, "/old") || !slices.Contains(dests, "/proc") {
		t.Errorf("mounts = %v", dests)
	}
	r := sp.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != 64<<20 || r.CPU == nil || *r.CPU.Shares != 512 {
		t.Errorf("resources = %+v", r)
	}
	if len(sp.Process.Rlimits) != 1 || sp.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || sp.Process.Rlimits[0].Hard != 2048 {
		t.Errorf("rlimits = %+v", sp.Process.Rlimits)
	}
}

func TestAdjustNilAndCDI(t *testing.T) {
	sp := testSpec()
	if err := Adjust(sp, nil, nil); err != nil {
		t.Fatal(err)
	}
	adj := &api.ContainerAdjustment{}
	adj.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"})
	refuse := func(*specs.Spec, []string) error { return errors.New("no such device") }
	if err := Adjust(sp, adj, refuse); err == nil {
		t.Error("a CDI device the injector refuses was accepted")
	}
	var got []string
	record := func(_ *specs.Spec, names []string) error { got = names; return nil }
	if err := Adjust(sp, adj, record); err != nil || !slices.Equal(got, []string{"vendor.com/gpu=0"}) {
		t.Errorf("injected %v, %v", got, err)
	}
}
