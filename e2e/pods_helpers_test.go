package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/fixture"
	"github.com/arbor-cri/arbor/e2e/harness"
)

// podTest is a daemon with the shared environment and a CRI client.
type podTest struct {
	t      testing.TB
	d      *harness.Daemon
	cri    *harness.Client
	env    *harness.Env
	ctx    context.Context
	cgroup string   // cgroup parent of the test's pods, marked for the leak check
	args   []string // daemon flags, kept for restarts
	vars   []string // extra daemon environment, kept for restarts
}

func newPodTest(t testing.TB, args ...string) *podTest {
	t.Helper()
	return newPodTestEnv(t, nil, args...)
}

// newPodTestEnv is newPodTest with extra environment (NAME=value) for the
// daemon.
func newPodTestEnv(t testing.TB, vars []string, args ...string) *podTest {
	t.Helper()
	env := sharedEnv(t)
	d := harness.Start(t, harness.Options{Shared: env, Args: args, Env: vars})
	pt := &podTest{t: t, d: d, cri: d.Client(t), env: env, ctx: context.Background(), args: args, vars: vars,
		cgroup: "/" + harness.TestMarker + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
	harness.RememberCgroup(pt.cgroup)
	t.Cleanup(pt.removePods) // a failed test still leaves nothing behind
	pt.pull(fixture.RefBusybox)
	return pt
}

// removePods removes every pod while the daemon still runs.
func (pt *podTest) removePods() {
	if pt.d.Exited() {
		return
	}
	pods, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		pt.t.Errorf("ListPodSandbox: %v", err)
		return
	}
	for _, p := range pods.GetItems() {
		if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			pt.t.Errorf("RemovePodSandbox: %v", err)
		}
	}
}

func (pt *podTest) pull(ref string) string {
	pt.t.Helper()
	resp, err := pt.cri.PullImage(pt.ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: pt.env.Image(ref)}})
	if err != nil {
		pt.t.Fatalf("pulling %s: %v", ref, err)
	}
	return resp.GetImageRef()
}

// podConfig is a kubelet-like pod: own PID namespace per container, a
// log folder and the test's cgroup parent.
func (pt *podTest) podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: name + "-uid"},
		Hostname:     name,
		LogDirectory: filepath.Join(pt.d.Dir, "logs", name),
		Labels:       map[string]string{"test": "e2e"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: pt.cgroup + "/" + name,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

func (pt *podTest) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	pt.t.Helper()
	resp, err := pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		pt.t.Fatalf("RunPodSandbox: %v\n%s", err, pt.d.Log())
	}
	return resp.GetPodSandboxId()
}

// ctrConfig is a busybox container running a shell command.
func (pt *podTest) ctrConfig(name, script string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: pt.env.Image(fixture.RefBusybox)},
		Command:  []string{"sh", "-c", script},
		LogPath:  name + ".log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

func (pt *podTest) createAndStart(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	pt.t.Helper()
	resp, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		pt.t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	id := resp.GetContainerId()
	if _, err := pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		pt.t.Fatalf("StartContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return id
}

func (pt *podTest) status(id string) *runtimeapi.ContainerStatus {
	pt.t.Helper()
	resp, err := pt.cri.ContainerStatus(pt.ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		pt.t.Fatalf("ContainerStatus: %v", err)
	}
	return resp.GetStatus()
}

// trapScript is a container command that exits 7 on SIGTERM. It runs as
// PID 1 of its PID namespace, which ignores SIGTERM until the shell has
// set its trap: it creates /tmp/ready after the trap, and waitReady waits
// for that before anyone sends the signal.
const trapScript = "trap 'exit 7' TERM; touch /tmp/ready; sleep 3600 & wait"

// waitReady waits until a container running trapScript has set its trap.
func (pt *podTest) waitReady(id string) {
	pt.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := pt.cri.ExecSync(pt.ctx, &runtimeapi.ExecSyncRequest{
			ContainerId: id, Cmd: []string{"test", "-f", "/tmp/ready"}, Timeout: 10})
		if err == nil && resp.GetExitCode() == 0 {
			return
		}
		if time.Now().After(deadline) {
			pt.t.Fatalf("container %s did not set its SIGTERM trap: %v, exit %d", id, err, resp.GetExitCode())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits until the container has exited and returns its status.
func (pt *podTest) waitExit(id string) *runtimeapi.ContainerStatus {
	pt.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st := pt.status(id); st.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	pt.t.Fatalf("container %s did not exit", id)
	return nil
}

// exec runs a command in a container and returns stdout, failing on a
// non-zero exit.
func (pt *podTest) exec(id string, cmd ...string) string {
	pt.t.Helper()
	resp, err := pt.cri.ExecSync(pt.ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 20})
	if err != nil {
		pt.t.Fatalf("exec %v: %v", cmd, err)
	}
	if resp.GetExitCode() != 0 {
		pt.t.Fatalf("exec %v: exit %d: %s%s", cmd, resp.GetExitCode(), resp.GetStdout(), resp.GetStderr())
	}
	return string(resp.GetStdout())
}

// cgroupPath returns the container's cgroup path from its verbose status.
func (pt *podTest) cgroupPath(id string) string {
	pt.t.Helper()
	resp, err := pt.cri.ContainerStatus(pt.ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		pt.t.Fatal(err)
	}
	var info struct {
		CgroupPath string `json:"cgroupPath"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.CgroupPath == "" {
		pt.t.Fatalf("no cgroup path in verbose status: %v %q", err, resp.GetInfo()["info"])
	}
	return info.CgroupPath
}

func readCgroup(t *testing.T, controller, path, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, path, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// removeAll removes every pod, then stops the daemon and checks that the
// test's marked cgroups and the daemon's mounts and processes are gone.
func (pt *podTest) finish() {
	pt.t.Helper()
	pt.removePods()
	pt.d.Stop(pt.t)
	if left := harness.CgroupsMatching(strings.TrimPrefix(pt.cgroup, "/")); len(left) > 0 {
		pt.t.Errorf("cgroup folders left: %v", left)
	}
	if left := harness.ProcessesMatching(pt.d.Dir); len(left) > 0 {
		pt.t.Errorf("processes left: %v", left)
	}
	if left := harness.MountsUnder(pt.d.Dir); len(left) > 0 {
		pt.t.Errorf("mounts left: %v", left)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
