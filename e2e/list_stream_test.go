package e2e

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// recvAll reads a server stream to EOF and returns its messages.
func recvAll[R any](t *testing.T, name string, s grpc.ServerStreamingClient[R], err error) []*R {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []*R
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: receiving: %v", name, err)
		}
		out = append(out, m)
	}
}

// sortedIDs returns the IDs of items in sorted order.
func sortedIDs[T any](items []T, id func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, id(it))
	}
	slices.Sort(out)
	return out
}

// flatten joins the items of every streamed message, failing on an empty
// message (the CRI asks for lists of at least one item).
func flatten[R, T any](t *testing.T, name string, msgs []*R, items func(*R) []T) []T {
	t.Helper()
	var out []T
	for i, m := range msgs {
		if len(items(m)) == 0 {
			t.Errorf("%s: message %d is empty", name, i)
		}
		out = append(out, items(m)...)
	}
	return out
}

// TestListStreamMatchesUnary runs 3 pods of 2 containers each and checks
// every Stream* list call returns the same items as its unary List call,
// with and without a filter, and no message for an empty result.
func TestListStreamMatchesUnary(t *testing.T) {
	pt := newPodTest(t)
	var podIDs, ctrIDs []string
	for i := range 3 {
		pod := pt.podConfig(fmt.Sprintf("stream-%d", i))
		podID := pt.runPod(pod)
		podIDs = append(podIDs, podID)
		for j := range 2 {
			ctrIDs = append(ctrIDs, pt.createAndStart(podID, pod, pt.ctrConfig(fmt.Sprintf("c%d", j), "sleep 3600")))
		}
	}
	slices.Sort(podIDs)
	slices.Sort(ctrIDs)

	t.Run("pods", func(t *testing.T) { checkStreamPods(t, pt, podIDs) })
	t.Run("containers", func(t *testing.T) { checkStreamContainers(t, pt, ctrIDs, podIDs[0]) })
	t.Run("container stats", func(t *testing.T) { checkStreamContainerStats(t, pt, ctrIDs, podIDs[1]) })
	t.Run("pod stats", func(t *testing.T) { checkStreamPodStats(t, pt, podIDs) })
	t.Run("pod metrics", func(t *testing.T) { checkStreamPodMetrics(t, pt, podIDs) })
	pt.finish()
}

func checkStreamPods(t *testing.T, pt *podTest, podIDs []string) {
	for _, f := range []*runtimeapi.PodSandboxFilter{nil, {Id: podIDs[2]}, {LabelSelector: map[string]string{"test": "none"}}} {
		list, err := pt.cri.ListPodSandbox(pt.ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		s, err := pt.cri.StreamPodSandboxes(pt.ctx, &runtimeapi.StreamPodSandboxesRequest{Filter: f})
		msgs := recvAll(t, "StreamPodSandboxes", s, err)
		got := flatten(t, "StreamPodSandboxes", msgs, (*runtimeapi.StreamPodSandboxesResponse).GetPodSandboxes)
		if !sameItems(got, list.GetItems(), (*runtimeapi.PodSandbox).GetId) {
			t.Errorf("filter %v: streamed %v, listed %v", f, got, list.GetItems())
		}
		if f == nil && !slices.Equal(sortedIDs(got, (*runtimeapi.PodSandbox).GetId), podIDs) {
			t.Errorf("streamed pods %v, want %v", sortedIDs(got, (*runtimeapi.PodSandbox).GetId), podIDs)
		}
		if len(list.GetItems()) == 0 && len(msgs) != 0 {
			t.Errorf("filter %v: an empty list sent %d messages", f, len(msgs))
		}
	}
}

func checkStreamContainers(t *testing.T, pt *podTest, ctrIDs []string, podID string) {
	running := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	for _, f := range []*runtimeapi.ContainerFilter{nil, {PodSandboxId: podID}, {State: running}, {Id: "0000"}} {
		list, err := pt.cri.ListContainers(pt.ctx, &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		s, err := pt.cri.StreamContainers(pt.ctx, &runtimeapi.StreamContainersRequest{Filter: f})
		msgs := recvAll(t, "StreamContainers", s, err)
		got := flatten(t, "StreamContainers", msgs, (*runtimeapi.StreamContainersResponse).GetContainers)
		if !sameItems(got, list.GetContainers(), (*runtimeapi.Container).GetId) {
			t.Errorf("filter %v: streamed %v, listed %v", f, got, list.GetContainers())
		}
		if f.GetPodSandboxId() != "" && len(got) != 2 {
			t.Errorf("pod %s: streamed %d containers, want 2", podID, len(got))
		}
		if f == nil && !slices.Equal(sortedIDs(got, (*runtimeapi.Container).GetId), ctrIDs) {
			t.Errorf("streamed containers %v, want %v", sortedIDs(got, (*runtimeapi.Container).GetId), ctrIDs)
		}
		if len(list.GetContainers()) == 0 && len(msgs) != 0 {
			t.Errorf("filter %v: an empty list sent %d messages", f, len(msgs))
		}
	}
}

// sameItems reports whether a and b hold equal messages, matched by ID.
func sameItems[T proto.Message](a, b []T, id func(T) string) bool {
	if len(a) != len(b) {
		return false
	}
	byID := map[string]T{}
	for _, x := range b {
		byID[id(x)] = x
	}
	for _, x := range a {
		y, ok := byID[id(x)]
		if !ok || !proto.Equal(x, y) {
			return false
		}
		delete(byID, id(x))
	}
	return true
}

// Stats change between two reads, so the stats calls are compared by the
// IDs they report.

func checkStreamContainerStats(t *testing.T, pt *podTest, ctrIDs []string, podID string) {
	id := func(s *runtimeapi.ContainerStats) string { return s.GetAttributes().GetId() }
	for _, f := range []*runtimeapi.ContainerStatsFilter{nil, {PodSandboxId: podID}, {Id: "0000"}} {
		list, err := pt.cri.ListContainerStats(pt.ctx, &runtimeapi.ListContainerStatsRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		s, err := pt.cri.StreamContainerStats(pt.ctx, &runtimeapi.StreamContainerStatsRequest{Filter: f})
		msgs := recvAll(t, "StreamContainerStats", s, err)
		got := sortedIDs(flatten(t, "StreamContainerStats", msgs, (*runtimeapi.StreamContainerStatsResponse).GetContainerStats), id)
		if want := sortedIDs(list.GetStats(), id); !slices.Equal(got, want) {
			t.Errorf("filter %v: streamed %v, listed %v", f, got, want)
		}
		if f == nil && !slices.Equal(got, ctrIDs) {
			t.Errorf("streamed stats of %v, want %v", got, ctrIDs)
		}
		if f.GetPodSandboxId() != "" && len(got) != 2 {
			t.Errorf("pod %s: streamed stats of %v, want 2 containers", podID, got)
		}
		if len(list.GetStats()) == 0 && len(msgs) != 0 {
			t.Errorf("filter %v: an empty list sent %d messages", f, len(msgs))
		}
	}
}

func checkStreamPodStats(t *testing.T, pt *podTest, podIDs []string) {
	id := func(s *runtimeapi.PodSandboxStats) string { return s.GetAttributes().GetId() }
	for _, f := range []*runtimeapi.PodSandboxStatsFilter{nil, {Id: podIDs[0]}, {LabelSelector: map[string]string{"test": "none"}}} {
		list, err := pt.cri.ListPodSandboxStats(pt.ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		s, err := pt.cri.StreamPodSandboxStats(pt.ctx, &runtimeapi.StreamPodSandboxStatsRequest{Filter: f})
		msgs := recvAll(t, "StreamPodSandboxStats", s, err)
		items := flatten(t, "StreamPodSandboxStats", msgs, (*runtimeapi.StreamPodSandboxStatsResponse).GetPodSandboxStats)
		got := sortedIDs(items, id)
		if want := sortedIDs(list.GetStats(), id); !slices.Equal(got, want) {
			t.Errorf("filter %v: streamed %v, listed %v", f, got, want)
		}
		if f == nil && !slices.Equal(got, podIDs) {
			t.Errorf("streamed stats of %v, want %v", got, podIDs)
		}
		for _, ps := range items {
			if n := len(ps.GetLinux().GetContainers()); n != 2 {
				t.Errorf("pod %s: stats of %d containers, want 2", id(ps), n)
			}
		}
		if len(list.GetStats()) == 0 && len(msgs) != 0 {
			t.Errorf("filter %v: an empty list sent %d messages", f, len(msgs))
		}
	}
}

func checkStreamPodMetrics(t *testing.T, pt *podTest, podIDs []string) {
	list, err := pt.cri.ListPodSandboxMetrics(pt.ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pt.cri.StreamPodSandboxMetrics(pt.ctx, &runtimeapi.StreamPodSandboxMetricsRequest{})
	msgs := recvAll(t, "StreamPodSandboxMetrics", s, err)
	items := flatten(t, "StreamPodSandboxMetrics", msgs, (*runtimeapi.StreamPodSandboxMetricsResponse).GetPodSandboxMetrics)
	id := (*runtimeapi.PodSandboxMetrics).GetPodSandboxId
	got := sortedIDs(items, id)
	if want := sortedIDs(list.GetPodMetrics(), id); !slices.Equal(got, want) || !slices.Equal(got, podIDs) {
		t.Errorf("streamed metrics of %v, listed %v, want %v", got, want, podIDs)
	}
	for _, pm := range items {
		if n := len(pm.GetContainerMetrics()); n != 2 || len(pm.GetContainerMetrics()[0].GetMetrics()) == 0 {
			t.Errorf("pod %s: metrics of %d containers, want 2 with metrics", id(pm), n)
		}
	}
}
