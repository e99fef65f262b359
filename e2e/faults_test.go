package e2e

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestFailureAtFaultPoints makes each named point of the create, start,
// stop and remove paths fail (an error, then a panic) while the daemon
// keeps running: the call fails, nothing is left behind, and the
// kubelet's retry of the same call succeeds.
func TestFailureAtFaultPoints(t *testing.T) {
	points := []string{
		"RunPodSandbox.after-namespaces", "RunPodSandbox.after-network", "RunPodSandbox.before-state-write",
		"CreateContainer.after-storage", "CreateContainer.after-runtime", "CreateContainer.before-state-write",
		"StartContainer.after-runtime",
		"RemoveContainer.after-runtime", "RemoveContainer.before-state-write",
		"StopPodSandbox.after-network", "RemovePodSandbox.before-state-write",
	}
	pt := newPodTest(t)
	for _, mode := range []string{"error", "panic"} {
		for _, point := range points {
			t.Run(mode+"/"+point, func(t *testing.T) {
				failAt(t, pt, point, mode)
			})
		}
	}
	pt.finish()
}

func failAt(t *testing.T, pt *podTest, point, mode string) {
	pod := pt.podConfig("fail-" + mode + "-" + strings.ToLower(strings.ReplaceAll(point, ".", "-")))
	ctr := pt.ctrConfig("c", "sleep 3600")
	var podID, ctrID string
	createReq := func() *runtimeapi.CreateContainerRequest {
		return &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: ctr, SandboxConfig: pod}
	}
	if !strings.HasPrefix(point, "RunPodSandbox") {
		podID = pt.runPod(pod)
	}
	switch {
	case strings.HasPrefix(point, "StartContainer"):
		resp, err := pt.cri.CreateContainer(pt.ctx, createReq())
		if err != nil {
			t.Fatal(err)
		}
		ctrID = resp.GetContainerId()
	case strings.HasPrefix(point, "Remove") || strings.HasPrefix(point, "Stop"):
		ctrID = pt.createAndStart(podID, pod, ctr)
	}
	call := func() error {
		var err error
		switch {
		case strings.HasPrefix(point, "RunPodSandbox"):
			var resp *runtimeapi.RunPodSandboxResponse
			resp, err = pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
			podID = resp.GetPodSandboxId()
		case strings.HasPrefix(point, "CreateContainer"):
			var resp *runtimeapi.CreateContainerResponse
			resp, err = pt.cri.CreateContainer(pt.ctx, createReq())
			ctrID = resp.GetContainerId()
		case strings.HasPrefix(point, "StartContainer"):
			_, err = pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID})
		case strings.HasPrefix(point, "RemoveContainer"):
			_, err = pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctrID})
		case strings.HasPrefix(point, "StopPodSandbox"):
			_, err = pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
		case strings.HasPrefix(point, "RemovePodSandbox"):
			_, err = pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
		}
		return err
	}
	if err := pt.d.Fault(point, mode, 1); err != nil {
		t.Fatal(err)
	}
	err := call()
	if err == nil {
		t.Fatalf("the call succeeded despite a %s at %s", mode, point)
	}
	if mode == "panic" && status.Code(err) != codes.Internal {
		t.Errorf("a panic at %s gave %v, want Internal", point, err)
	}
	// A failed create is undone entirely.
	if strings.HasPrefix(point, "RunPodSandbox") {
		pods, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.GetItems() {
			if p.GetMetadata().GetName() == pod.Metadata.Name {
				t.Errorf("pod %s listed after its create failed", p.GetId())
			}
		}
	}
	if strings.HasPrefix(point, "CreateContainer") {
		filter := &runtimeapi.ContainerFilter{PodSandboxId: podID}
		ctrs, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(ctrs.GetContainers()); n != 0 {
			t.Errorf("%d containers listed after the create failed", n)
		}
	}
	checkNoLeaks(t, pt)
	if err := call(); err != nil {
		t.Fatalf("the retry after a %s at %s: %v", mode, point, err)
	}
	if strings.HasPrefix(point, "StartContainer") || strings.HasPrefix(point, "CreateContainer") && ctrID != "" {
		if strings.HasPrefix(point, "CreateContainer") {
			if _, err := pt.cri.StartContainer(pt.ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID}); err != nil {
				t.Fatal(err)
			}
		}
		pt.exec(ctrID, "true")
	}
	pt.removePods()
	checkNoLeaks(t, pt)
}
