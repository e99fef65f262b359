package e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkListContainerStats measures ListContainerStats with 100
// running containers (10 pods of 10), and the daemon's CPU time while a
// kubelet-like poller calls it every 10 seconds for a minute. Run:
// go test -tags ... -run '^$' -bench ListContainerStats -benchtime 1x ./e2e/
func BenchmarkListContainerStats(b *testing.B) {
	pt := newPodTest(b)
	for p := range 10 {
		pod := pt.podConfig(fmt.Sprintf("stats-%d", p))
		podID := pt.runPod(pod)
		for c := range 10 {
			pt.createAndStart(podID, pod, pt.ctrConfig(fmt.Sprintf("c%d", c), "sleep 3600"))
		}
	}
	list := func() time.Duration {
		start := time.Now()
		resp, err := pt.cri.ListContainerStats(pt.ctx, &runtimeapi.ListContainerStatsRequest{})
		if err != nil || len(resp.GetStats()) != 100 {
			b.Fatalf("ListContainerStats: %d stats, %v", len(resp.GetStats()), err)
		}
		return time.Since(start)
	}
	list() // the first call measures the writable layers
	var took []time.Duration
	for range 50 {
		took = append(took, list())
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "ms-p99")

	cpuBefore := cpuTime(b, pt.d.Pid())
	wall := time.Now()
	for range 6 {
		list()
		time.Sleep(10 * time.Second)
	}
	used := cpuTime(b, pt.d.Pid()) - cpuBefore
	b.ReportMetric(100*used.Seconds()/time.Since(wall).Seconds(), "%cpu-under-poller")
	pt.finish()
}

// cpuTime is the user plus system time of a process.
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks of 1/100 s
}
