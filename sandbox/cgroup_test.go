package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/arbor-cri/arbor/internal/cgroupfs"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCgroupParent(t *testing.T) {
	cfg := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/burstable/podabc"}}
	if got := CgroupParent(cfg); got != "/kubepods/burstable/podabc" {
		t.Errorf("CgroupParent = %q", got)
	}
	if got := CgroupParent(nil); got != "" {
		t.Errorf("CgroupParent(nil) = %q, want empty", got)
	}
}

// testCgroupParent returns a unique three-level cgroup parent and removes
// its top folder from every hierarchy when the test ends.
func testCgroupParent(t *testing.T) (parent, top string) {
	t.Helper()
	top = "arbor-sbtest-" + randomHex(t, 4)
	t.Cleanup(func() {
		roots, _ := cgroupfs.Hierarchies()
		for _, r := range roots {
			for _, d := range []string{"burstable/pod1", "burstable", ""} {
				os.Remove(filepath.Join(r, top, d))
			}
		}
	})
	return "/" + top + "/burstable/pod1", top
}

func TestEnsureAndRemoveCgroupParent(t *testing.T) {
	requireRoot(t)
	parent, top := testCgroupParent(t)
	roots, err := cgroupfs.Hierarchies()
	if err != nil || len(roots) == 0 {
		t.Fatalf("no cgroup hierarchies: %v", err)
	}
	created, err := EnsureCgroupParent(parent)
	if err != nil {
		t.Fatalf("EnsureCgroupParent: %v", err)
	}
	if len(created) != 3*len(roots) {
		t.Errorf("created %d folders, want %d: %v", len(created), 3*len(roots), created)
	}
	for _, r := range roots {
		if _, err := os.Stat(filepath.Join(r, parent, "cgroup.procs")); err != nil {
			t.Errorf("cgroup %s missing in %s: %v", parent, r, err)
		}
	}
	checkCpusetInherited(t, filepath.Join(cgroupfs.Root, "cpuset", parent))
	again, err := EnsureCgroupParent(parent)
	if err != nil || len(again) != 0 {
		t.Errorf("second EnsureCgroupParent = %v, %v; want nothing created", again, err)
	}
	if err := RemoveCgroups(created); err != nil {
		t.Fatalf("RemoveCgroups: %v", err)
	}
	for _, r := range roots {
		requireNotExist(t, filepath.Join(r, top))
	}
	if err := RemoveCgroups(created); err != nil {
		t.Errorf("second RemoveCgroups: %v", err)
	}
}

// checkCpusetInherited checks that a new cpuset folder can take processes.
func checkCpusetInherited(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(cgroupfs.Root, "cpuset", "cpuset.cpus")); err != nil {
		return // no v1 cpuset hierarchy
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if v := readProc(t, filepath.Join(dir, f)); v == "" {
			t.Errorf("%s/%s is empty", dir, f)
		}
	}
}

func TestEnsureCgroupParentKeepsExistingFolders(t *testing.T) {
	requireRoot(t)
	parent, top := testCgroupParent(t)
	pids := filepath.Join(cgroupfs.Root, "pids")
	if _, err := os.Stat(filepath.Join(pids, "cgroup.procs")); err != nil {
		t.Skip("needs the v1 pids hierarchy")
	}
	if err := os.Mkdir(filepath.Join(pids, top), 0o755); err != nil {
		t.Fatal(err)
	}
	created, err := EnsureCgroupParent(parent)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(created, filepath.Join(pids, top)) {
		t.Errorf("created lists the existing %s", filepath.Join(pids, top))
	}
	if err := RemoveCgroups(created); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pids, top)); err != nil {
		t.Errorf("existing folder removed: %v", err)
	}
	requireNotExist(t, filepath.Join(pids, top, "burstable"))
}

func TestRemoveCgroupsReportsBusy(t *testing.T) {
	requireRoot(t)
	parent, _ := testCgroupParent(t)
	pidsDir := filepath.Join(cgroupfs.Root, "pids", parent)
	created, err := EnsureCgroupParent(parent)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(created, pidsDir) {
		t.Skip("needs the v1 pids hierarchy")
	}
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := os.WriteFile(filepath.Join(pidsDir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	err = RemoveCgroups(created)
	if err == nil || !strings.Contains(err.Error(), pidsDir) {
		t.Fatalf("RemoveCgroups with a process inside = %v, want an error naming %s", err, pidsDir)
	}
	if _, err := os.Stat(pidsDir); err != nil {
		t.Fatalf("busy cgroup vanished: %v", err)
	}
	if !strings.Contains(err.Error(), "child "+pidsDir+" remains") {
		t.Errorf("error %q does not say why the ancestors stay", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := RemoveCgroups(created); err != nil {
		t.Fatalf("RemoveCgroups after the process exited: %v", err)
	}
	for _, d := range created {
		requireNotExist(t, d)
	}
}

func TestEnsureCgroupParentRefusesDotDot(t *testing.T) {
	if _, err := EnsureCgroupParent("/kubepods/../../etc"); err == nil {
		t.Fatal("EnsureCgroupParent accepted ..")
	}
	if created, err := EnsureCgroupParent(""); err != nil || created != nil {
		t.Fatalf("EnsureCgroupParent(\"\") = %v, %v", created, err)
	}
}

func TestEnsureCgroupParentRollsBack(t *testing.T) {
	requireRoot(t)
	top := "arbor-sbtest-" + randomHex(t, 4)
	roots, err := cgroupfs.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, r := range roots {
			os.Remove(filepath.Join(r, top))
		}
	})
	// cgroup.procs is a file in every cgroup, so the level below it fails
	// after the top folder was made.
	created, err := EnsureCgroupParent("/" + top + "/cgroup.procs/child")
	if err == nil {
		t.Fatalf("EnsureCgroupParent succeeded: %v", created)
	}
	for _, r := range roots {
		requireNotExist(t, filepath.Join(r, top))
	}
}

// TestRemoveCgroupsLeavesSharedAncestors removes the pod that created a
// cgroup ancestor while another pod still lives below it: the first pod's
// own folder goes, the shared ancestor stays, and neither removal fails.
func TestRemoveCgroupsLeavesSharedAncestors(t *testing.T) {
	requireRoot(t)
	parent, top := testCgroupParent(t)
	sibling := filepath.Join(filepath.Dir(parent), "pod2")
	roots, err := cgroupfs.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, r := range roots {
			os.Remove(filepath.Join(r, sibling))
		}
	})
	first, err := EnsureCgroupParent(parent)
	if err != nil {
		t.Fatal(err)
	}
	second, err := EnsureCgroupParent(sibling)
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != len(roots) {
		t.Fatalf("the sibling created %v, want only its own folders", second)
	}
	if err := RemoveCgroups(first); err != nil {
		t.Fatalf("removing the pod that created the shared ancestor: %v", err)
	}
	for _, r := range roots {
		requireNotExist(t, filepath.Join(r, parent))
		if _, err := os.Stat(filepath.Join(r, sibling)); err != nil {
			t.Errorf("the sibling's cgroup is gone: %v", err)
		}
	}
	if err := RemoveCgroups(second); err != nil {
		t.Fatalf("removing the sibling: %v", err)
	}
	for _, r := range roots {
		requireNotExist(t, filepath.Join(r, sibling))
		if _, err := os.Stat(filepath.Join(r, top, "burstable")); err != nil {
			t.Errorf("shared ancestor removed by a pod that did not create it: %v", err)
		}
	}
}

// TestMissingCgroupFolders checks that the folders planned ahead of a
// create are exactly those the create then makes.
func TestMissingCgroupFolders(t *testing.T) {
	requireRoot(t)
	parent, _ := testCgroupParent(t)
	planned, err := MissingCgroupFolders(parent)
	if err != nil {
		t.Fatal(err)
	}
	created, err := EnsureCgroupParent(parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = RemoveCgroups(created) })
	if !slices.Equal(planned, created) {
		t.Errorf("planned %v, created %v", planned, created)
	}
	if again, err := MissingCgroupFolders(parent); err != nil || len(again) != 0 {
		t.Errorf("after the create, missing = %v, %v; want none", again, err)
	}
}
