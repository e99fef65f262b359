package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkNRIPluginUp measures bringing a pod up (RunPodSandbox,
// CreateContainer, StartContainer) and down, 20 pods without an NRI
// plugin and then 20 with the test plugin connected (which records every
// event and adjusts each container). Run:
// go test -tags ... -run '^$' -bench NRIPluginUp -benchtime 1x ./e2e/
func BenchmarkNRIPluginUp(b *testing.B) {
	dir := b.TempDir()
	socket := filepath.Join(dir, "nri.sock")
	pt := newPodTest(b, "--nri-socket-path", socket)
	cycle := func(name string) (up, down time.Duration) {
		pod := pt.podConfig(name)
		start := time.Now()
		podID := pt.runPod(pod)
		pt.createAndStart(podID, pod, pt.ctrConfig("c", "sleep 3600"))
		up = time.Since(start)
		start = time.Now()
		if _, err := pt.cri.StopPodSandbox(pt.ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			b.Fatal(err)
		}
		if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			b.Fatal(err)
		}
		return up, time.Since(start)
	}
	run := func(label string) {
		var ups, downs []time.Duration
		for i := range 20 {
			u, d := cycle(fmt.Sprintf("%s-%d", label, i))
			ups, downs = append(ups, u), append(downs, d)
		}
		b.ReportMetric(medianMs(ups), "ms-up-"+label)
		b.ReportMetric(medianMs(downs), "ms-down-"+label)
	}
	run("no-plugin")
	p := &nriPlugin{ready: make(chan struct{})}
	connectNRIPlugin(b, socket, p)
	run("plugin")
	if n := len(p.seen()); n < 20*7 {
		b.Errorf("the plugin saw %d events, want at least %d", n, 20*7)
	}
	pt.finish()
}

func medianMs(d []time.Duration) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[len(d)/2].Microseconds()) / 1000
}
