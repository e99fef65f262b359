package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/harness"
)

// restart starts a new daemon on the same folders and points pt at it.
// The daemon belongs to pt's test, not to a subtest.
func (pt *podTest) restart(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	d, err := harness.Launch(pt.t, harness.Options{Shared: pt.env, Dir: pt.d.Dir, Args: pt.args, Env: pt.vars})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitServing(20 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	took := time.Since(start)
	pt.d, pt.cri = d, d.Client(pt.t)
	// Cleanups run last-registered first: remove pods before this daemon
	// is killed.
	pt.t.Cleanup(pt.removePods)
	return took
}

// TestRestoreAfterKill kills the daemon with running pods and checks that
// a new one finds them running, can exec into them, and reports an exit
// that happened while it was down.
func TestRestoreAfterKill(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			pt := newPodTest(t)
			pod := pt.podConfig("survivor")
			podID := pt.runPod(pod)
			keep := pt.createAndStart(podID, pod, pt.ctrConfig("keep", "sleep 3600"))
			victim := pt.createAndStart(podID, pod, pt.ctrConfig("victim", trapScript))
			pt.waitReady(victim)

			if err := pt.d.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if _, err := pt.d.Wait(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			// While the daemon is down, the victim's process is told to stop.
			killContainer(t, pt, victim)
			took := pt.restart(t)
			t.Logf("restart to serving after %s: %s", sig, took.Round(time.Millisecond))

			if st := pt.status(keep); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("kept container after restart: %v", st.GetState())
			}
			if out := pt.exec(keep, "echo", "still here"); !strings.Contains(out, "still here") {
				t.Fatalf("exec after restart: %q", out)
			}
			st := pt.waitExit(victim)
			if st.GetExitCode() != 7 {
				t.Fatalf("exit while down: code %d reason %s", st.GetExitCode(), st.GetReason())
			}
			checkNoLeaks(t, pt)
			pt.finish()
		})
	}
}

// killContainer sends SIGTERM to a container's process from outside, by
// the pid an earlier daemon recorded.
func killContainer(t *testing.T, pt *podTest, id string) {
	t.Helper()
	out, err := pt.d.Arbor("status", "container", id)
	if err == nil {
		t.Fatalf("the daemon should be down, but status answered: %s", out)
	}
	pid := containerPid(t, pt.d, id)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("killing container process %d: %v", pid, err)
	}
}

// containerPid reads the container's pid from its record on disk.
func containerPid(t *testing.T, d *harness.Daemon, id string) int {
	t.Helper()
	var rec struct {
		Pid int `json:"pid"`
	}
	readJSON(t, d.Root+"/state/containers/"+id+".json", &rec)
	if rec.Pid <= 0 {
		t.Fatalf("no pid in record of %s", id)
	}
	return rec.Pid
}

// checkNoLeaks asks the daemon for leftovers and fails on any.
func checkNoLeaks(t *testing.T, pt *podTest) {
	t.Helper()
	out, err := pt.d.Arbor("status", "leaks")
	if err != nil {
		t.Fatalf("status leaks: %v\n%s", err, out)
	}
	var leaks []map[string]string
	if err := json.Unmarshal([]byte(out), &leaks); err != nil || len(leaks) != 0 {
		t.Fatalf("leaks: %v %s", err, out)
	}
}

// TestCrashAtFaultPoints kills the daemon (fault mode exit) at each named
// point of the create and remove paths; after a restart the interrupted
// object is either complete or entirely gone, and nothing leaked.
func TestCrashAtFaultPoints(t *testing.T) {
	points := []struct {
		point  string
		userns bool // the pod has its own user namespace
	}{
		{"RunPodSandbox.after-namespaces", false},
		{"RunPodSandbox.after-network", false},
		{"RunPodSandbox.before-state-write", false},
		{"CreateContainer.after-storage", false},
		{"CreateContainer.after-runtime", false},
		{"CreateContainer.before-state-write", false},
		{"StartContainer.after-runtime", false},
		{"RemoveContainer.after-runtime", false},
		{"RemoveContainer.before-state-write", false},
		{"StopPodSandbox.after-network", false},
		{"RemovePodSandbox.before-state-write", false},
		{"RunPodSandbox.after-namespaces", true},
		{"RunPodSandbox.after-network", true},
		{"CreateContainer.after-storage", true},
		{"CreateContainer.after-runtime", true},
	}
	pt := newPodTest(t)
	for _, p := range points {
		name := p.point
		if p.userns {
			name += "/userns"
		}
		t.Run(name, func(t *testing.T) {
			pod := pt.podConfig("crash-" + strings.ToLower(strings.NewReplacer(".", "-", "/", "-").Replace(name)))
			if p.userns {
				pod = pt.usernsPod(pod.Metadata.Name)
			}
			var podID, ctrID string
			if !strings.HasPrefix(p.point, "RunPodSandbox") {
				podID = pt.runPod(pod)
			}
			if strings.HasPrefix(p.point, "Remove") || strings.HasPrefix(p.point, "Stop") {
				ctrID = pt.createAndStart(podID, pod, pt.ctrConfig("c", "sleep 3600"))
			}
			if strings.HasPrefix(p.point, "StartContainer") {
				resp, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: pt.ctrConfig("c", "sleep 3600"), SandboxConfig: pod})
				if err != nil {
					t.Fatal(err)
				}
				ctrID = resp.GetContainerId()
			}
			if err := pt.d.Fault(p.point, "exit", 1); err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(p.point, "RunPodSandbox"):
				_, _ = pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
			case strings.HasPrefix(p.point, "CreateContainer"):
				_, _ = pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: pt.ctrConfig("c", "sleep 3600"), SandboxConfig: pod})
			case strings.HasPrefix(p.point, "StartContainer"):
				_, _ = pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID})
			case strings.HasPrefix(p.point, "RemoveContainer"):
				_, _ = pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctrID})
			case strings.HasPrefix(p.point, "StopPodSandbox"):
				_, _ = pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
			case strings.HasPrefix(p.point, "RemovePodSandbox"):
				_, _ = pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
			}
			if code, err := pt.d.Wait(20 * time.Second); err != nil || code != -1 {
				t.Fatalf("the daemon did not die at %s: exit %d, %v", p.point, code, err)
			}
			pt.restart(t)
			checkNoLeaks(t, pt)
			if strings.HasPrefix(p.point, "StartContainer") {
				// The runtime started it before the crash: it must show so.
				if st := pt.status(ctrID); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
					t.Fatalf("a container started just before the crash shows %v", st.GetState())
				}
			}
			// A kubelet would now retry; the same names must be free or held
			// by a complete object.
			pods, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range pods.GetItems() {
				if item.GetMetadata().GetName() == pod.Metadata.Name && item.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
					// Complete: it must work.
					id := pt.createAndStart(item.GetId(), pod, pt.ctrConfig("after", "sleep 3600"))
					pt.exec(id, "true")
				}
			}
			pt.removePods()
			checkNoLeaks(t, pt)
		})
	}
	pt.finish()
}

// TestSimulatedRebootAndUpgrade removes the volatile version file and the
// container processes (what a reboot does) and checks that the restarted
// daemon removes every pod and container, leaving nothing; then writes an
// older persistent version and checks that unused images are wiped.
func TestSimulatedRebootAndUpgrade(t *testing.T) {
	pt := newPodTest(t, "--wipe-images-on-upgrade")
	pod := pt.podConfig("rebooted")
	podID := pt.runPod(pod)
	id := pt.createAndStart(podID, pod, pt.ctrConfig("c", "sleep 3600"))
	pid := containerPid(t, pt.d, id)
	if err := pt.d.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.d.Wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The reboot: processes and the tmpfs version file are gone.
	for _, p := range append(harness.ProcessesMatching(pt.d.Dir), fmt.Sprint(pid)) {
		if n, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
			_ = syscall.Kill(n, syscall.SIGKILL)
		}
	}
	if err := os.Remove(filepath.Join(pt.d.RunRoot, "version")); err != nil {
		t.Fatal(err)
	}
	pt.restart(t)
	if err := pt.d.WaitLog("The node rebooted", time.Second); err != nil {
		t.Fatal(err)
	}
	if n := countPods(t, pt); n != 0 {
		t.Fatalf("%d pods survived a reboot", n)
	}
	checkNoLeaks(t, pt)

	// The upgrade: an older version in the persistent file.
	if err := pt.d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := pt.d.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop: %d %v", code, err)
	}
	if err := os.WriteFile(filepath.Join(pt.d.Root, "version"), []byte("0.0.1-old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pt.restart(t)
	imgs, err := pt.cri.ListImages(pt.ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs.GetImages() {
		if !img.GetPinned() {
			t.Errorf("unused image %v survived the upgrade wipe", img.GetRepoTags())
		}
	}
	pt.finish()
}
