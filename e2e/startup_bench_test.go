package e2e

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/harness"
)

// BenchmarkStartup measures the time from exec to the first successful
// CRI Version call, and the daemon's resident memory after ten idle
// seconds. Run: go test -tags ... -run '^$' -bench Startup -benchtime 10x ./e2e/
func BenchmarkStartup(b *testing.B) {
	// The first start on an empty root also probes the kernel's overlay
	// support (storage caches the answer); later starts are what a node
	// sees when the daemon restarts.
	first, dir := startOnce(b, "")
	var times []time.Duration
	for range b.N {
		took, _ := startOnce(b, dir)
		times = append(times, took)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(first.Microseconds())/1000, "ms-first-start")
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-to-serve(median)")

	d := harness.Start(b, harness.Options{LevelFromConfig: true, Dir: dir})
	time.Sleep(10 * time.Second)
	b.ReportMetric(float64(vmRSS(b, d.Pid()))/(1<<20), "MiB-idle-RSS")
	d.Stop(b)
}

// startOnce starts a daemon on dir (a new folder when empty), waits for
// its first CRI Version, stops it and returns the time to serve and the
// folder.
func startOnce(b *testing.B, dir string) (time.Duration, string) {
	start := time.Now()
	d, err := harness.Launch(b, harness.Options{LevelFromConfig: true, Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := firstVersion(d.Socket, 20*time.Second); err != nil {
		b.Fatalf("%v\n%s", err, d.Log())
	}
	took := time.Since(start)
	d.Stop(b)
	return took, d.Dir
}

// firstVersion polls the socket until Version succeeds and returns how
// long that took from the call.
func firstVersion(socket string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(limit)
	for {
		conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, err = runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
			cancel()
			conn.Close()
			if err == nil {
				return time.Since(start), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, err
		}
		time.Sleep(time.Millisecond)
	}
}

func vmRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
