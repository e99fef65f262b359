package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInheritCpuset(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "child")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(parent, "cpuset.cpus"), "0-1\n")
	write(filepath.Join(parent, "cpuset.mems"), "0\n")
	write(filepath.Join(dir, "cpuset.cpus"), "\n")
	write(filepath.Join(dir, "cpuset.mems"), "0\n")
	if err := InheritCpuset(parent, dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cpuset.cpus")); string(got) != "0-1\n" {
		t.Fatalf("cpuset.cpus = %q", got)
	}

	other := filepath.Join(parent, "memory-like")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := InheritCpuset(parent, other); err != nil {
		t.Fatalf("a folder without cpuset files must be left alone: %v", err)
	}
}

func TestHierarchies(t *testing.T) {
	roots, err := Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) == 0 {
		t.Fatal("no cgroup hierarchy found")
	}
	for _, r := range roots {
		if !exists(filepath.Join(r, "cgroup.procs")) {
			t.Errorf("%s accepts no processes", r)
		}
	}
}
