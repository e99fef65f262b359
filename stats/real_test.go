package stats

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// testCgroup makes the cgroup <parent>/ctr, under a test-only parent, in
// every hierarchy the layout reads, and removes both at cleanup. It
// returns the cgroupfs path and the folders holding cgroup.procs.
func testCgroup(t *testing.T, l Layout) (string, []string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	rel := filepath.Join("arbor-statstest-"+hex.EncodeToString(b[:]), "ctr")
	var roots []string
	for _, root := range l.Controllers {
		roots = append(roots, root)
	}
	if l.Unified != "" {
		roots = append(roots, l.Unified)
	}
	var leaves []string
	for _, root := range roots {
		leaf := filepath.Join(root, rel)
		if err := os.MkdirAll(leaf, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, d := range []string{leaf, filepath.Dir(leaf)} {
				if err := os.Remove(d); err != nil {
					t.Errorf("removing test cgroup: %v", err)
				}
			}
		})
		leaves = append(leaves, leaf)
	}
	return "/" + rel, leaves
}

// runInCgroup starts a shell, moves it into the cgroup folders, then lets
// it allocate about 2 MB, burn some CPU and wait holding the memory. The
// extra files are its descriptors 3 and on. It is killed at cleanup,
// before the cgroups are removed.
func runInCgroup(t *testing.T, leaves []string, extra ...*os.File) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `read go; x=$(head -c 2000000 /dev/zero | tr '\0' a); i=0; `+
		`while [ $i -lt 50000 ]; do i=$((i+1)); done; echo ready; read stop`)
	cmd.ExtraFiles = extra
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for _, leaf := range leaves {
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatalf("moving the process into %s: %v", leaf, err)
		}
	}
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	waitLine(t, bufio.NewReader(out), "ready")
}

// TestReadRealCgroupV1 reads a real v1 memory, cpuacct and pids cgroup
// (and its hybrid cgroup2 twin for PSI) holding a process that did
// known work.
func TestReadRealCgroupV1(t *testing.T) {
	needRoot(t)
	l := DetectLayout(DefaultRoot)
	if l.V2 || l.Controllers["memory"] == "" || l.Controllers["cpuacct"] == "" {
		t.Skip("host has no cgroup v1 memory and cpuacct hierarchies")
	}
	path, leaves := testCgroup(t, l)
	const limit = 64 << 20
	memLeaf := filepath.Join(l.Controllers["memory"], path)
	if err := os.WriteFile(filepath.Join(memLeaf, "memory.limit_in_bytes"), []byte(strconv.Itoa(limit)), 0o644); err != nil {
		t.Fatal(err)
	}
	runInCgroup(t, leaves)

	cg, err := l.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if cg.CPU.UsageNs == 0 || cg.CPU.UserNs+cg.CPU.SystemNs == 0 {
		t.Fatalf("no CPU time counted: %+v", cg.CPU)
	}
	m := cg.Memory
	if m.Usage < 1<<20 || m.RSS < 1<<20 || m.WorkingSet == 0 || m.WorkingSet > m.Usage || m.PageFaults == 0 {
		t.Fatalf("memory does not show the 2 MB the shell held: %+v", m)
	}
	if m.Limit != limit {
		t.Fatalf("limit %d, want %d", m.Limit, limit)
	}
	if !cg.HasPids || cg.Pids != 1 {
		t.Fatalf("pids %d (read %v), want the one shell", cg.Pids, cg.HasPids)
	}
	if l.Unified != "" && cg.CPU.PSI == nil {
		t.Fatal("the hybrid cgroup2 hierarchy has cpu.pressure but no PSI was read")
	}

	c := NewCollector(Options{Layout: l}, discardLog())
	s, err := c.Container(context.Background(), ContainerTarget{ID: "x", CgroupPath: path})
	if err != nil || s.Cgroup == nil || s.Cgroup.CPU.UsageNs < cg.CPU.UsageNs {
		t.Fatalf("collector reading %+v, %v", s, err)
	}
}

// TestReadRealCgroupV1Limits reads the CFS, pids limit, kernel memory and
// open file counters of a real v1 cgroup with a CPU quota and a pids
// limit, holding a shell that has a socket as descriptor 3.
func TestReadRealCgroupV1Limits(t *testing.T) {
	needRoot(t)
	l := DetectLayout(DefaultRoot)
	if l.V2 || l.Controllers["cpu"] == "" || l.Controllers["pids"] == "" || l.Controllers["memory"] == "" {
		t.Skip("host has no cgroup v1 cpu, pids and memory hierarchies")
	}
	path, leaves := testCgroup(t, l)
	for file, value := range map[string]string{
		filepath.Join(l.Controllers["cpu"], path, "cpu.cfs_period_us"): "10000",
		filepath.Join(l.Controllers["cpu"], path, "cpu.cfs_quota_us"):  "5000",
		filepath.Join(l.Controllers["pids"], path, "pids.max"):         "64",
	} {
		if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sock := socketPair(t)
	runInCgroup(t, leaves, sock)

	cg, err := l.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !cg.CPU.HasCFS || cg.CPU.CFS.Periods == 0 {
		t.Fatalf("a busy cgroup with a quota counted no CFS periods: %+v (read %v)", cg.CPU.CFS, cg.CPU.HasCFS)
	}
	if cg.PidsMax != 64 || cg.Pids != 1 {
		t.Fatalf("pids %d of %d, want 1 of 64", cg.Pids, cg.PidsMax)
	}
	if cg.Memory.KernelUsage == 0 {
		t.Fatalf("no kernel memory charged to a cgroup that forked: %+v", cg.Memory)
	}
	if cg.Files == nil || cg.Files.Sockets != 1 || cg.Files.Descriptors < 4 {
		t.Fatalf("open files %+v, want stdin, stdout, stderr and one socket", cg.Files)
	}
}

// socketPair returns one end of a unix socket pair; both ends are closed
// at cleanup.
func socketPair(t *testing.T) *os.File {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() {
		_ = a.Close()
		_ = b.Close()
	})
	return a
}
