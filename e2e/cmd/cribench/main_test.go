package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/bench"
	"github.com/arbor-cri/arbor/e2e/fixture"
	"github.com/arbor-cri/arbor/e2e/harness"
)

// Flags of TestBenchArbor, the full benchmark against arbor.
var (
	full     = flag.Bool("cribench.full", false, "run TestBenchArbor: the full benchmark against a fresh arbor")
	fullArgs = flag.String("cribench.args", "", "extra cribench flags for TestBenchArbor")
)

// shared is the registry with the test images and the CNI network.
var shared harness.LazyEnv

func sharedEnv(t *testing.T) *harness.Env { return shared.Get(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// startArbor runs arbor on the shared environment, with pods in cgroups
// named for the host leak check.
func startArbor(t *testing.T) (*harness.Daemon, *harness.Env) {
	e := sharedEnv(t)
	return harness.Start(t, harness.Options{Shared: e, LevelFromConfig: true}), e
}

func TestShortRunAgainstArbor(t *testing.T) {
	d, e := startArbor(t)
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"-socket", d.Socket, "-image", e.Image(fixture.RefBusybox), "-pods", "3",
		"-list-containers", "20", "-list-calls", "5", "-rss-pods", "2", "-json", out, "-quiet",
		"-floor-image", "docker://" + e.Image(fixture.RefBusybox),
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s\n--- daemon log ---\n%s", err, stderr.String(), d.Log())
	}
	t.Logf("table:\n%s", stdout.String())
	rep := readReport(t, out)
	checkReport(t, rep, d.Socket)
	for _, want := range []string{"RunPodSandbox", "ListContainers", "runc run", "rss [1]"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	requireNothingLeft(t, d, rep.RunID)
	d.Stop(t)
}

func readReport(t *testing.T, path string) *bench.Report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, data)
	}
	return &rep
}

// checkReport requires every call of the pods and list workloads, the
// floor and the RSS figures to be measured with the right counts and
// positive, ordered values.
func checkReport(t *testing.T, rep *bench.Report, socket string) {
	t.Helper()
	if len(rep.Runtimes) != 1 || rep.Runtimes[0].Socket != socket || !strings.HasPrefix(rep.Runtimes[0].Name, "arbor") {
		t.Fatalf("runtimes = %+v, want one arbor on %s", rep.Runtimes, socket)
	}
	rt := rep.Runtimes[0]
	for _, tc := range []struct {
		workload, call string
		n              int
	}{
		{"pods", "RunPodSandbox", 3}, {"pods", "CreateContainer", 3}, {"pods", "StartContainer", 3},
		{"pods", "StopContainer", 3}, {"pods", "RemoveContainer", 3}, {"pods", "StopPodSandbox", 3},
		{"pods", "RemovePodSandbox", 3}, {"pods", "up", 3}, {"pods", "down", 3},
		{"list", "ListContainers", 5}, {"list", "ListPodSandbox", 5},
	} {
		s, ok := rt.Call(tc.workload, tc.call)
		checkSummary(t, tc.workload+"/"+tc.call, s, ok, tc.n)
	}
	up, _ := rt.Call("pods", "up")
	run, _ := rt.Call("pods", "RunPodSandbox")
	if up.Min < run.Min {
		t.Errorf("up min %v below RunPodSandbox min %v", up.Min, run.Min)
	}
	if rep.Floor == nil {
		t.Fatal("no floor in report")
	}
	for _, c := range rep.Floor.Calls {
		checkSummary(t, "floor/"+c.Call, c.Summary, true, 3)
	}
	if len(rt.RSS) != 1 || rt.RSS[0].BaselineKiB <= 0 || rt.RSS[0].WithPodsKiB <= 0 || rt.RSS[0].Pods != 2 {
		t.Errorf("rss = %+v, want one reading with 2 pods", rt.RSS)
	}
}

func checkSummary(t *testing.T, name string, s bench.Summary, ok bool, n int) {
	t.Helper()
	switch {
	case !ok:
		t.Errorf("%s: not measured", name)
	case s.N != n:
		t.Errorf("%s: %d samples, want %d", name, s.N, n)
	case s.Min <= 0 || s.Median < s.Min || s.P99 < s.Median || s.Max < s.P99:
		t.Errorf("%s: implausible summary %+v", name, s)
	}
}

// requireNothingLeft requires the daemon to list no pods or containers and
// the host to hold no floor cgroup of the run.
func requireNothingLeft(t *testing.T, d *harness.Daemon, runID string) {
	t.Helper()
	c := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := c.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ctrs, err := c.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.GetItems()) != 0 || len(ctrs.GetContainers()) != 0 {
		t.Errorf("left behind: %d pods, %d containers", len(pods.GetItems()), len(ctrs.GetContainers()))
	}
	if cg := harness.CgroupsMatching("cribench-" + runID); len(cg) != 0 {
		t.Errorf("floor cgroups left behind: %v", cg)
	}
	if p := harness.ProcessesMatching("cribench-floor-"); len(p) != 0 {
		t.Errorf("floor processes left behind: %v", p)
	}
}

// TestCancelledRunCleansUp cancels a run once the daemon has made a pod
// and requires the sweep to leave nothing behind.
func TestCancelledRunCleansUp(t *testing.T) {
	d, e := startArbor(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		if err := d.WaitLog("Container started", time.Minute); err != nil {
			t.Error(err)
		}
	})
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-socket", d.Socket, "-image", e.Image(fixture.RefBusybox), "-workloads", "pods",
		"-pods", "30", "-json", out, "-quiet"}, &stdout, &stderr)
	wg.Wait()
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("run = %v, want cancelled\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Swept leftover pods") {
		t.Errorf("cancelled run swept nothing:\n%s", stderr.String())
	}
	requireNothingLeft(t, d, readReport(t, out).RunID)
	d.Stop(t)
}

// TestTwoRuntimesAlternate runs two daemons as two runtimes for two
// rounds and requires both measured every round, with ratios to the first.
func TestTwoRuntimesAlternate(t *testing.T) {
	a, e := startArbor(t)
	b, _ := startArbor(t)
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-socket", a.Socket, "-socket", "unix://" + b.Socket,
		"-image", e.Image(fixture.RefBusybox), "-workloads", "pods", "-pods", "2", "-rounds", "2", "-json", out, "-quiet"},
		&stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	rep := readReport(t, out)
	if len(rep.Runtimes) != 2 || rep.Runtimes[0].Socket != a.Socket || rep.Runtimes[1].Socket != b.Socket {
		t.Fatalf("runtimes = %+v, want %s then %s", rep.Runtimes, a.Socket, b.Socket)
	}
	for i, rt := range rep.Runtimes {
		s, ok := rt.Call("pods", "up")
		checkSummary(t, fmt.Sprintf("runtime %d up", i+1), s, ok, 4)
	}
	if len(rep.Runtimes[0].Ratios) != 0 || len(rep.Runtimes[1].Ratios) != 9 {
		t.Errorf("ratios: first %v, second %v; want none and 9", rep.Runtimes[0].Ratios, rep.Runtimes[1].Ratios)
	}
	if !strings.Contains(stdout.String(), "[2]/[1] median") {
		t.Errorf("table has no ratio column:\n%s", stdout.String())
	}
	requireNothingLeft(t, a, rep.RunID)
	requireNothingLeft(t, b, rep.RunID)
	a.Stop(t)
	b.Stop(t)
}

// TestBenchArbor is the full benchmark: default sizes against a fresh
// arbor, table to stdout. Opt in with -cribench.full.
func TestBenchArbor(t *testing.T) {
	if !*full {
		t.Skip("the full benchmark runs only with -cribench.full")
	}
	d, e := startArbor(t)
	// The floor unpacks the very image the runtime runs; later flags win.
	img := e.Image(fixture.RefBusybox)
	args := append([]string{"-socket", d.Socket, "-image", img, "-floor-image", "docker://" + img}, strings.Fields(*fullArgs)...)
	var stdout bytes.Buffer
	err := run(context.Background(), args, &stdout, os.Stderr)
	fmt.Print(stdout.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	d.Stop(t)
}
