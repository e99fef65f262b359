package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/fixture"
)

func TestStatsAndEvents(t *testing.T) {
	pt := newPodTest(t)
	ctx, cancel := context.WithCancel(pt.ctx)
	defer cancel()
	events, err := pt.cri.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan *runtimeapi.ContainerEventResponse, 100)
	go func() {
		for {
			ev, err := events.Recv()
			if err != nil {
				close(seen)
				return
			}
			seen <- ev
		}
	}()
	waitEventsLive(t, pt, seen)

	pod := pt.podConfig("observed")
	podID := pt.runPod(pod)
	id := pt.createAndStart(podID, pod, pt.ctrConfig("busy", "head -c 20000000 /dev/zero > /tmp/fill; sleep 3600"))
	waitFor(t, "container stats with memory and disk use", func() bool {
		st, err := pt.cri.ContainerStats(pt.ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
		return err == nil && st.GetStats().GetMemory().GetWorkingSetBytes().GetValue() > 0 &&
			st.GetStats().GetCpu().GetUsageCoreNanoSeconds().GetValue() > 0
	})
	out := crictl(t, pt.d, "stats", "-o", "json", id)
	if !strings.Contains(out, id) || !strings.Contains(out, "workingSetBytes") {
		t.Errorf("crictl stats:\n%s", out)
	}
	if out := crictl(t, pt.d, "statsp", "-o", "json", podID); !strings.Contains(out, podID) {
		t.Errorf("crictl statsp:\n%s", out)
	}
	if _, err := pt.cri.ContainerStats(pt.ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "feedbeef"}); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("stats of an unknown container: %v", err)
	}

	if _, err := pt.cri.StopContainer(pt.ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.cri.RemoveContainer(pt.ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	want := map[runtimeapi.ContainerEventType]bool{}
	deadline := time.After(10 * time.Second)
	for len(want) < 4 {
		select {
		case ev, ok := <-seen:
			if !ok {
				t.Fatal("event stream ended")
			}
			if ev.GetContainerId() == id {
				want[ev.GetContainerEventType()] = true
			}
		case <-deadline:
			t.Fatalf("events seen for the container: %v", want)
		}
	}
	cancel()
	pt.finish()
}

// waitEventsLive waits until the server has subscribed the event stream
// whose events arrive on seen: GetContainerEvents returns before it has,
// and an event published in between is not sent. It runs throwaway pods
// until an event of one arrives (their pod events; only the first
// normally), and leaves no pod behind.
func waitEventsLive(t *testing.T, pt *podTest, seen <-chan *runtimeapi.ContainerEventResponse) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		id := pt.runPod(pt.podConfig(fmt.Sprintf("events-probe-%d", i)))
		live := false
		wait := time.After(time.Second)
	drain:
		for {
			select {
			case ev, ok := <-seen:
				if !ok {
					t.Fatal("event stream ended")
				}
				if ev.GetContainerId() == id {
					live = true
					break drain
				}
			case <-wait:
				break drain
			}
		}
		if _, err := pt.cri.RemovePodSandbox(pt.ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
		if live {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no event of a probe pod arrived: the event stream never went live")
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	port := freePort(t)
	pt := newPodTest(t, "--enable-metrics", "--metrics-port", strconv.Itoa(port))
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	before := metricValue(t, url, `arbor_cri_operations_total{method="Version"}`)
	for range 3 {
		crictl(t, pt.d, "version")
	}
	if after := metricValue(t, url, `arbor_cri_operations_total{method="Version"}`); after < before+3 {
		t.Errorf("Version counter went from %v to %v after 3 calls", before, after)
	}

	// A pull that fetches and one that fails, counted by outcome; the bytes
	// and layers are what the download read.
	const (
		pullsOK       = `arbor_image_pulls_total{outcome="OK"}`
		pullsNotFound = `arbor_image_pulls_total{outcome="NotFound"}`
		pullBytes     = `arbor_image_pull_bytes_total`
		fetched       = `arbor_image_pull_layers_total{source="fetched"}`
	)
	ok, notFound, bytes, layers := metricValue(t, url, pullsOK), metricValue(t, url, pullsNotFound),
		metricValue(t, url, pullBytes), metricValue(t, url, fetched)
	pt.pull(fixture.RefMultilayer)
	if _, err := pt.d.Crictl("pull", pt.env.Catalog.Registry+"/arbor-test/no-such-image:latest"); err == nil {
		t.Error("pulling a missing image succeeded")
	}
	if got := metricValue(t, url, pullsOK); got != ok+1 {
		t.Errorf("%s went from %v to %v after one pull", pullsOK, ok, got)
	}
	if got := metricValue(t, url, pullsNotFound); got != notFound+1 {
		t.Errorf("%s went from %v to %v after one pull of a missing image", pullsNotFound, notFound, got)
	}
	// The layers busybox (pulled at the start) does not have are fetched,
	// every compressed byte of them.
	stored := map[string]bool{}
	for _, l := range pt.env.Catalog.MustImage(fixture.RefBusybox).Layers {
		stored[l.Digest] = true
	}
	var newLayers, newBytes float64
	for _, l := range pt.env.Catalog.MustImage(fixture.RefMultilayer).Layers {
		if !stored[l.Digest] {
			newLayers++
			newBytes += float64(l.Size)
		}
	}
	if got := metricValue(t, url, pullBytes); got < bytes+newBytes {
		t.Errorf("%s went from %v to %v after pulling %v bytes of new layers", pullBytes, bytes, got, newBytes)
	}
	if got := metricValue(t, url, fetched); newLayers == 0 || got != layers+newLayers {
		t.Errorf("%s went from %v to %v after pulling %v new layers", fetched, layers, got, newLayers)
	}

	restarts := metricValue(t, url, `arbor_service_restarts_total{domain="stream",service="stream"}`)
	if err := pt.d.Fault("stream", "panic", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart counter to rise", func() bool {
		return metricValue(t, url, `arbor_service_restarts_total{domain="stream",service="stream"}`) > restarts
	})
	pt.finish()
}

// metricValue scrapes url and returns the value of the series named
// exactly by series (0 when absent).
func metricValue(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestCheckpointUnimplemented checks that CheckpointContainer, which is
// not built, says so with the node's CRIU state rather than pretending.
func TestCheckpointUnimplemented(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("checkpoint")
	id := pt.createAndStart(pt.runPod(pod), pod, pt.ctrConfig("c", "sleep 3600"))
	_, err := pt.cri.CheckpointContainer(pt.ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: t.TempDir() + "/c.tar"})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(strings.ToLower(err.Error()), "criu") {
		t.Errorf("want Unimplemented naming CRIU, got %v", err)
	}
	if st := pt.status(id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the container is %v after a refused checkpoint", st.GetState())
	}
	pt.finish()
}

// TestCrictlEvents watches `crictl events` while crictl runs a pod and a
// container and removes them again: each object's created, started,
// stopped and deleted events show up, in that order.
func TestCrictlEvents(t *testing.T) {
	pt := newPodTest(t)
	dir := t.TempDir()
	watch := crictlSession(t, pt.d, "events", "-o", "go-template",
		"--template", `{{.containerId}} {{.containerEventType}}`)
	watch.start()

	// The stream is subscribed a moment after crictl has connected, so
	// throwaway pods run until one of theirs is seen.
	for i := 0; ; i++ {
		probe := crictl(t, pt.d, "runp", writeConfig(t, dir, "probe.json", pt.podConfig(fmt.Sprintf("events-probe-%d", i))))
		live := waitUntil(time.Second, func() bool { return strings.Contains(watch.out.String(), probe) })
		crictl(t, pt.d, "rmp", "-f", probe)
		if live {
			break
		}
		if i == 30 {
			t.Fatalf("crictl events never showed a probe pod's event:\n%s", watch.out.String())
		}
	}

	pod := pt.podConfig("watched")
	podFile := writeConfig(t, dir, "pod.json", pod)
	ctrFile := writeConfig(t, dir, "ctr.json", pt.ctrConfig("watched", "sleep 3600"))
	podID := crictl(t, pt.d, "runp", podFile)
	ctrID := crictl(t, pt.d, "create", podID, ctrFile, podFile)
	crictl(t, pt.d, "start", ctrID)
	crictl(t, pt.d, "stop", "--timeout", "1", ctrID)
	crictl(t, pt.d, "rm", ctrID)
	crictl(t, pt.d, "stopp", podID)
	crictl(t, pt.d, "rmp", podID)

	want := []string{"CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT", "CONTAINER_DELETED_EVENT"}
	eventsOf := func(id string) []string {
		var got []string
		for line := range strings.Lines(watch.out.String()) {
			if f := strings.Fields(line); len(f) == 2 && f[0] == id {
				got = append(got, f[1])
			}
		}
		return got
	}
	for what, id := range map[string]string{"pod": podID, "container": ctrID} {
		if !waitUntil(10*time.Second, func() bool { return len(eventsOf(id)) >= len(want) }) ||
			strings.Join(eventsOf(id), " ") != strings.Join(want, " ") {
			t.Errorf("crictl events for the %s %s: %v, want %v\n%s", what, id, eventsOf(id), want, watch.out.String())
		}
	}
	watch.kill()
	pt.finish()
}

// TestPanicInStatsWorker panics in one of the goroutines ListContainerStats
// reads containers with: the call fails with Internal naming the panic,
// the daemon keeps serving, and the next call reports every container.
func TestPanicInStatsWorker(t *testing.T) {
	pt := newPodTest(t)
	pod := pt.podConfig("stats-panic")
	podID := pt.runPod(pod)
	for i := range 3 {
		pt.createAndStart(podID, pod, pt.ctrConfig(fmt.Sprintf("c%d", i), "sleep 3600"))
	}
	if err := pt.d.Fault("ContainerStats.read", "panic", 1); err != nil {
		t.Fatal(err)
	}
	_, err := pt.cri.ListContainerStats(pt.ctx, &runtimeapi.ListContainerStatsRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "ContainerStats.read") {
		t.Fatalf("ListContainerStats with a panicking worker: %v, want Internal naming the panic", err)
	}
	if err := pt.d.WaitLog("Handler panicked", 5*time.Second); err != nil {
		t.Error(err)
	}
	resp, err := pt.cri.ListContainerStats(pt.ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil || len(resp.GetStats()) != 3 {
		t.Fatalf("ListContainerStats after the panic: %d stats, %v", len(resp.GetStats()), err)
	}
	pt.finish()
}
