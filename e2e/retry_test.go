package e2e

import (
	"context"
	"strings"
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
	// The daemon logs this once the pod is listed and parked.
	waitParked(t, pt, 1)
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
	waitParked(t, pt, 2)
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

// waitParked waits until the daemon has parked n objects in all: it logs
// each once the object is listed and can be claimed by a retry.
func waitParked(t *testing.T, pt *podTest, n int) {
	t.Helper()
	const parkedLine = "keeping it for a retry"
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(pt.d.Log(), parkedLine) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not log %q %d times:\n%s", parkedLine, n, pt.d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
