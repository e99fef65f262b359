package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/harness"
	"github.com/arbor-cri/arbor/services/exitmonitor"
)

// TestPodGoesDuringCreate stops or removes a pod while a container is
// being created in it, held up at a fault point (its writable layer made,
// or its process created too). The stop or removal waits for the create,
// then covers the new container like the others: after a stop it is not
// running and cannot be started, after a removal it is gone, and nothing
// leaks either way.
func TestPodGoesDuringCreate(t *testing.T) {
	for _, point := range []string{"CreateContainer.after-storage", "CreateContainer.after-runtime"} {
		for _, remove := range []bool{false, true} {
			what := map[bool]string{false: "stop", true: "remove"}[remove]
			t.Run(fmt.Sprintf("%s/%s", point, what), func(t *testing.T) {
				podGoesDuringCreate(t, point, remove)
			})
		}
	}
}

func podGoesDuringCreate(t *testing.T, point string, remove bool) {
	pt := newPodTest(t)
	pod := pt.podConfig("going")
	podID := pt.runPod(pod)
	if err := pt.d.Fault(point, "delay=1500ms", 1); err != nil {
		t.Fatal(err)
	}
	type result struct {
		id  string
		err error
	}
	created := make(chan result, 1)
	go func() {
		resp, err := pt.cri.CreateContainer(pt.ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: podID, Config: pt.ctrConfig("late", "sleep 3600"), SandboxConfig: pod})
		created <- result{resp.GetContainerId(), err}
	}()
	if err := pt.d.WaitLog("Fault fired", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var err error
	if remove {
		_, err = pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
	} else {
		_, err = pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
	}
	if err != nil {
		t.Fatalf("the pod's %s during a create: %v", map[bool]string{false: "stop", true: "removal"}[remove], err)
	}
	r := <-created
	if r.err != nil {
		t.Fatalf("the create the pod's stop waited for failed: %v", r.err)
	}

	st, err := pt.cri.ContainerStatus(pt.ctx, &runtimeapi.ContainerStatusRequest{ContainerId: r.id})
	switch {
	case remove && err == nil:
		t.Errorf("container %s (%s) outlived its removed pod", r.id, st.GetStatus().GetState())
	case !remove && err != nil:
		t.Errorf("status of the container created in the stopped pod: %v", err)
	case !remove && st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING:
		t.Errorf("container %s runs in a stopped pod", r.id)
	}
	if !remove {
		if _, err := pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: r.id}); err == nil {
			t.Errorf("container %s started in a stopped pod", r.id)
		}
	}
	pt.removePods()
	checkNoLeaks(t, pt)
	pt.finish()
}

// TestInfraExitMakesPodNotReady kills the infra process of a pod that
// shares its PID namespace, once while the daemon runs and once while it
// is down: the pod is reported not ready (its PID namespace is gone), no
// container can be created or started in it, and the kubelet's stop and
// removal leave nothing behind.
func TestInfraExitMakesPodNotReady(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "down"}[down], func(t *testing.T) {
			pt := newPodTest(t)
			pod := pt.podConfig("infra-dies")
			pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
			podID := pt.runPod(pod)
			cfg := pt.ctrConfig("member", "sleep 3600")
			cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
			req := &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod}
			resp, err := pt.cri.CreateContainer(pt.ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			created := resp.GetContainerId()
			infra := infraPid(t, pt, podID)
			if down {
				pt.d.Kill()
			}
			if err := syscall.Kill(infra, syscall.SIGKILL); err != nil {
				t.Fatalf("killing the infra process %d: %v", infra, err)
			}
			if down {
				waitFor(t, "the infra process to be gone", func() bool { return syscall.Kill(infra, 0) != nil })
				pt.restart(t)
			}
			waitFor(t, "the pod to be not ready", func() bool {
				st, err := pt.cri.PodSandboxStatus(pt.ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
				return err == nil && st.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
			})
			if _, err := pt.cri.CreateContainer(pt.ctx, req); status.Code(err) != codes.FailedPrecondition {
				t.Errorf("creating a container in a pod whose infra process died: %v, want FailedPrecondition", err)
			}
			_, err = pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: created})
			if status.Code(err) != codes.FailedPrecondition {
				t.Errorf("starting a container in a pod whose infra process died: %v, want FailedPrecondition", err)
			}
			if _, err := pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
				t.Fatalf("stopping the pod: %v", err)
			}
			if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
				t.Fatalf("removing the pod: %v", err)
			}
			checkNoLeaks(t, pt)
			pt.finish()
		})
	}
}

// infraPid is the pid of a pod's infra process, from its verbose status.
func infraPid(t *testing.T, pt *podTest, podID string) int {
	t.Helper()
	st, err := pt.cri.PodSandboxStatus(pt.ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); err != nil || info.Pid <= 0 {
		t.Fatalf("infra pid in %q: %v", st.GetInfo()["info"], err)
	}
	return info.Pid
}

// TestConmonKilled kills a running container's conmon: the container
// keeps running and is reported running; once its process is gone too,
// with no exit file to tell, the daemon's sweep reports it exited with an
// unknown code (255, Unknown), so that a kubelet restarts it; stop and
// removal then leave nothing behind.
func TestConmonKilled(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("orphaned")
	id := pt.createAndStart(pt.runPod(pod), pod, pt.ctrConfig("orphan", "sleep 3600"))
	var conmon int
	for _, p := range harness.ProcessesMatching("\x00-c\x00" + id + "\x00") {
		if f := strings.Fields(p); len(f) > 1 && filepath.Base(f[1]) == "conmon" {
			conmon, _ = strconv.Atoi(f[0])
		}
	}
	if conmon == 0 {
		t.Fatalf("no conmon of %s", id)
	}
	ctr := pt.pid(id)
	if err := syscall.Kill(conmon, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A sweep later the container, still alive, is still running.
	time.Sleep(exitmonitor.DefaultSweepInterval + time.Second)
	if st := pt.status(id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container whose conmon died but which still runs is %s", st.GetState())
	}
	if err := syscall.Kill(ctr, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the container to be reported exited", func() bool {
		filter := &runtimeapi.ContainerFilter{Id: id}
		ctrs, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{Filter: filter})
		return err == nil && len(ctrs.GetContainers()) == 1 &&
			ctrs.GetContainers()[0].GetState() == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	if st := pt.status(id); st.GetExitCode() != 255 || st.GetReason() != "Unknown" {
		t.Errorf("exit of a container whose monitor died: code %d reason %q, want 255 Unknown", st.GetExitCode(), st.GetReason())
	}
	if _, err := pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	pt.removePods()
	checkNoLeaks(t, pt)
	pt.finish()
}
