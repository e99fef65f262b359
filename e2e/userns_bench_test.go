package e2e

import (
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkUserNamespaceUp compares bringing a pod up (RunPodSandbox,
// CreateContainer, StartContainer) and down (stop and remove) with and
// without a pod user namespace, 20 pods each, alternating. Run:
// go test -tags ... -run '^$' -bench UserNamespaceUp -benchtime 1x ./e2e/
func BenchmarkUserNamespaceUp(b *testing.B) {
	pt := newPodTest(b)
	up := map[bool][]time.Duration{}
	down := map[bool][]time.Duration{}
	for i := range 40 {
		userns := i%2 == 1
		name := fmt.Sprintf("up-%d", i)
		pod := pt.podConfig(name)
		ctr := pt.ctrConfig("c", "sleep 3600")
		if userns {
			pod = pt.usernsPod(name)
		}
		start := time.Now()
		podID := pt.runPod(pod)
		pt.createAndStart(podID, pod, ctr)
		up[userns] = append(up[userns], time.Since(start))
		start = time.Now()
		if _, err := pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			b.Fatal(err)
		}
		if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			b.Fatal(err)
		}
		down[userns] = append(down[userns], time.Since(start))
	}
	b.ReportMetric(medianMs(up[false]), "ms-up-host-users")
	b.ReportMetric(medianMs(up[true]), "ms-up-userns")
	b.ReportMetric(medianMs(down[false]), "ms-down-host-users")
	b.ReportMetric(medianMs(down[true]), "ms-down-userns")
	pt.finish()
}
