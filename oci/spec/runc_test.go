package spec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/testrootfs"
)

// runcEnv is a real runc state root, a cgroup parent and a busybox rootfs.
type runcEnv struct {
	root         string
	cgroupParent string
	rootfs       string
}

// newRuncEnv prepares runc state and a busybox rootfs, registering cleanup
// of containers and cgroups. It skips only when runc or root is missing.
func newRuncEnv(t *testing.T) *runcEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run runc")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	buf := make([]byte, 4)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	e := &runcEnv{root: t.TempDir(), cgroupParent: "/arbor-spectest-" + hex.EncodeToString(buf), rootfs: busyboxRootfs(t)}
	t.Cleanup(e.removeCgroupParent)
	return e
}

// busyboxRootfs copies the host's dynamic busybox and its libraries, with
// applet symlinks and the test passwd and group files.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	testrootfs.RequireBusybox(t)
	root := t.TempDir()
	testrootfs.Build(t, root, testrootfs.Options{
		Applets: []string{"sh", "id", "grep", "cat", "hostname", "touch", "test", "sleep", "echo", "ls", "stat"},
		Symlink: true,
	})
	writeFile(t, root, "etc/passwd", testPasswd)
	writeFile(t, root, "etc/group", testGroup)
	return root
}

// removeCgroupParent removes the test's cgroup parent in every hierarchy.
func (e *runcEnv) removeCgroupParent() {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.cgroupParent))
	if d := filepath.Join("/sys/fs/cgroup", e.cgroupParent); exists(d) {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

// exists reports whether p exists.
func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runc runs the runc CLI against the test state root. Output goes through
// files, not pipes, so a detached container holding them open cannot
// block the call.
func (e *runcEnv) runc(t *testing.T, stdout *bytes.Buffer, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outFile, errFile := tempFile(t), tempFile(t)
	cmd := exec.CommandContext(ctx, "runc", append([]string{"--root", e.root}, args...)...)
	cmd.Stdout, cmd.Stderr = outFile, errFile
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	out, _ := os.ReadFile(outFile.Name())
	errOut, _ := os.ReadFile(errFile.Name())
	if stdout != nil {
		stdout.Write(out)
	}
	if runErr != nil {
		return fmt.Errorf("runc %s: %w: %s%s", strings.Join(args, " "), runErr, out, errOut)
	}
	return nil
}

// tempFile creates a file closed and removed at test end.
func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// writeBundle writes config.json for s into a new bundle directory.
func writeBundle(t *testing.T, s *specs.Spec) string {
	t.Helper()
	bundle := t.TempDir()
	testrootfs.WriteConfig(t, bundle, s)
	return bundle
}

// startSandbox runs a pause-like sandbox detached and returns its pid.
func (e *runcEnv) startSandbox(t *testing.T, id string, files PodFiles) int {
	t.Helper()
	s, err := GenerateSandbox(SandboxInput{
		ID: id, RootfsPath: e.rootfs, PauseCommand: []string{"/bin/sleep", "3600"}, Files: files, Host: mustDetectHost(t),
		Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "u"},
			Hostname: "pod-host",
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				CgroupParent: e.cgroupParent,
				Sysctls:      map[string]string{"kernel.shm_rmid_forced": "1"},
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.runc(t, nil, "delete", "-f", id) })
	if err := e.runc(t, nil, "run", "--detach", "--bundle", writeBundle(t, s), id); err != nil {
		t.Fatal(err)
	}
	var state bytes.Buffer
	if err := e.runc(t, &state, "state", id); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(state.Bytes(), &st); err != nil || st.Pid == 0 {
		t.Fatalf("runc state %q: %v", state.String(), err)
	}
	return st.Pid
}

// mustDetectHost detects the real host.
func mustDetectHost(t *testing.T) Host {
	t.Helper()
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// capMask renders capability names as the hex mask /proc/*/status shows.
func capMask(names []string) string {
	var mask uint64
	for _, c := range allKnownCaps() {
		for _, n := range names {
			if capName(c) == n {
				mask |= 1 << uint(c)
			}
		}
	}
	return fmt.Sprintf("%016x", mask)
}

// statusField extracts a "Field:\tvalue" line from command output.
func statusField(out, field string) string {
	m := regexp.MustCompile(`(?m)^` + field + `:\s*(\S+)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// outputLine extracts the value after "key=" on its own line.
func outputLine(out, key string) string {
	m := regexp.MustCompile(`(?m)^` + key + `=(.*)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

const probeScript = `echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status;
echo host=$(hostname); echo nofile=$(ulimit -n); echo oom=$(cat /proc/self/oom_score_adj);
echo shm=$(cat /proc/sys/kernel/shm_rmid_forced); echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes);
echo pids=$(cat /sys/fs/cgroup/pids/pids.max); echo hosts=$(cat /etc/hosts);
if test -c /dev/xnull; then echo dev=ok; fi; if touch /data/x 2>/dev/null; then echo data=rw; else echo data=ro; fi;
echo masked=$(stat -c %F /proc/interrupts)`

// TestRuncRunsGeneratedSpecs runs a sandbox and a container joining its
// namespaces with real runc and checks what the container observes.
func TestRuncRunsGeneratedSpecs(t *testing.T) {
	e := newRuncEnv(t)
	host := mustDetectHost(t)
	podDir := t.TempDir()
	files := PodFiles{ShmPath: t.TempDir(), HostsPath: writeFile(t, podDir, "hosts", "127.0.0.1 pod-host\n")}
	pid := e.startSandbox(t, "sb-"+filepath.Base(e.cgroupParent), files)
	nsPath := func(n string) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, n) }
	tests := []struct {
		name  string
		sc    *runtimeapi.LinuxContainerSecurityContext
		oom   int64
		want  map[string]string
		check func(t *testing.T, s *specs.Spec, rep Report, out string)
	}{
		{"non-root by username with seccomp", &runtimeapi.LinuxContainerSecurityContext{
			RunAsUsername: "alice", SupplementalGroups: []int64{4000}, NoNewPrivs: true,
			Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NET_RAW"}, DropCapabilities: []string{"KILL"}},
			Seccomp:      &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}, 300, map[string]string{"oom": "300", "masked": "character special file"}, func(t *testing.T, s *specs.Spec, rep Report, out string) {
			if outputLine(out, "uid") != "1000" || outputLine(out, "gid") != "1000" || !equalSets(strings.Fields(outputLine(out, "groups")), []string{"1000", "44", "29", "4000"}) {
				t.Fatalf("identity wrong:\n%s", out)
			}
			if fmt.Sprint(rep.User.AdditionalGIDs) != "[1000 44 29 4000]" {
				t.Fatalf("reported user %+v", rep.User)
			}
			if statusField(out, "CapBnd") != capMask(s.Process.Capabilities.Bounding) || statusField(out, "CapEff") != "0000000000000000" {
				t.Fatalf("caps wrong (want bounding %s):\n%s", capMask(s.Process.Capabilities.Bounding), out)
			}
			if statusField(out, "Seccomp") != "2" || statusField(out, "NoNewPrivs") != "1" {
				t.Fatalf("seccomp/nnp wrong:\n%s", out)
			}
		}},
		{"root with add ALL", &runtimeapi.LinuxContainerSecurityContext{
			Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"ALL"}},
		}, 300, map[string]string{"oom": "300", "masked": "character special file"}, func(t *testing.T, s *specs.Spec, rep Report, out string) {
			want := capMask(host.BoundingCaps)
			if outputLine(out, "uid") != "0" || statusField(out, "CapEff") != want || statusField(out, "CapBnd") != want {
				t.Fatalf("want all bounding caps %s:\n%s", want, out)
			}
			if statusField(out, "Seccomp") != "0" {
				t.Fatalf("unconfined container has seccomp:\n%s", out)
			}
		}},
		{"privileged with negative oom score", &runtimeapi.LinuxContainerSecurityContext{
			Privileged: true, Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}, -500, map[string]string{"oom": "0", "masked": "regular empty file"}, func(t *testing.T, s *specs.Spec, rep Report, out string) {
			if host.CanSetNegativeOOMScoreAdj {
				t.Skip("host can set negative oom_score_adj; clamp not exercised")
			}
			if !rep.OOMScoreAdjClamped || statusField(out, "CapEff") != capMask(host.BoundingCaps) || statusField(out, "Seccomp") != "0" {
				t.Fatalf("report %+v:\n%s", rep, out)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("c%d-%s", i, filepath.Base(e.cgroupParent))
			in := ContainerInput{
				ID: id, SandboxID: "sb", RootfsPath: e.rootfs, Host: host, PidsLimit: 64, Files: files,
				Namespaces: NamespacePaths{Network: nsPath("net"), IPC: nsPath("ipc"), UTS: nsPath("uts"), PID: nsPath("pid")},
				Config: &runtimeapi.ContainerConfig{
					Metadata: &runtimeapi.ContainerMetadata{Name: "probe"},
					Command:  []string{"/bin/sh", "-c", probeScript},
					Mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: t.TempDir(), Readonly: true, RecursiveReadOnly: true}},
					Devices:  []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/xnull", Permissions: "rw"}},
					Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: tc.sc,
						Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, OomScoreAdj: tc.oom,
							HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 2 << 20}}}},
				},
				Sandbox: &runtimeapi.PodSandboxConfig{Hostname: "pod-host", Linux: &runtimeapi.LinuxPodSandboxConfig{
					CgroupParent: e.cgroupParent, Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}}},
			}
			s, rep, err := GenerateWithReport(in)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.runc(t, nil, "delete", "-f", id) })
			var out bytes.Buffer
			if err := e.runc(t, &out, "run", "--bundle", writeBundle(t, s), id); err != nil {
				t.Fatalf("%v\noutput:\n%s", err, out.String())
			}
			got := out.String()
			checkCommon(t, got, host, tc.want)
			tc.check(t, s, rep, got)
		})
	}
}

// checkCommon asserts what every probe container must see.
func checkCommon(t *testing.T, out string, h Host, extra map[string]string) {
	t.Helper()
	want := map[string]string{
		"host": "pod-host", "shm": "1", "mem": strconv.Itoa(64 << 20), "pids": "64",
		"hosts": "127.0.0.1 pod-host", "dev": "ok", "data": "ro",
		"nofile": strconv.FormatUint(min(h.NofileHardLimit, DefaultNofile), 10),
	}
	for k, v := range extra {
		want[k] = v
	}
	for k, v := range want {
		if got := outputLine(out, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if t.Failed() {
		t.Logf("container output:\n%s", out)
	}
}
