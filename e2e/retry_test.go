package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRetryGetsTheParkedPod makes RunPodSandbox outlive its client's
// deadline; the kubelet's identical retry then gets the finished pod, not
// a name conflict, and a different request replaces it.
func TestRetryGetsTheParkedPod(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("slow")
	if err := pt.d.Fault("RunPodSandbox.after-network", "delay=2s", 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(pt.ctx, 500*time.Millisecond)
	_, err := pt.cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("the first call must time out, got %v", err)
	}
	if err := pt.d.WaitLog("keeping it for a retry", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	parked := onlyPod(t, pt)

	resp, err := pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil || resp.GetPodSandboxId() != parked {
		t.Fatalf("the identical retry must get the parked pod %s: %v %v", parked, resp, err)
	}
	id := pt.createAndStart(parked, pod, pt.ctrConfig("c", "sleep 3600"))
	pt.exec(id, "true")

	// A different request for the same name, after another give-up,
	// replaces the parked pod.
	if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: parked}); err != nil {
		t.Fatal(err)
	}
	if err := pt.d.Fault("RunPodSandbox.after-network", "delay=2s", 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(pt.ctx, 500*time.Millisecond)
	_, _ = pt.cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	cancel()
	waitFor(t, "the second pod to be parked", func() bool { return countPods(t, pt) == 1 })
	first := onlyPod(t, pt)
	changed := pt.podConfig("slow")
	changed.Labels["changed"] = "yes"
	resp, err = pt.cri.RunPodSandbox(pt.ctx, &runtimeapi.RunPodSandboxRequest{Config: changed})
	if err != nil || resp.GetPodSandboxId() == first {
		t.Fatalf("a different request must get a new pod: %v %v", resp, err)
	}
	if n := countPods(t, pt); n != 1 {
		t.Fatalf("the parked pod was not removed: %d pods", n)
	}
	pt.finish()
}

func countPods(t *testing.T, pt *podTest) int {
	t.Helper()
	pods, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.GetItems())
}

func onlyPod(t *testing.T, pt *podTest) string {
	t.Helper()
	pods, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(pods.GetItems()) != 1 {
		t.Fatalf("want one pod: %v %v", pods, err)
	}
	return pods.GetItems()[0].GetId()
}
