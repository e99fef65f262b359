package cri

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/events"
	"github.com/arbor-cri/arbor/store"
)

// fakeListStream is a grpc.ServerStreamingServer[R] that records what is
// sent. It cancels its context after cancelAfter sends (0: never) and
// fails every send with sendErr when set.
type fakeListStream[R any] struct {
	grpc.ServerStream
	ctx         context.Context
	cancel      context.CancelFunc
	cancelAfter int
	sendErr     error
	sent        []*R
}

func newFakeListStream[R any]() *fakeListStream[R] {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeListStream[R]{ctx: ctx, cancel: cancel}
}

func (f *fakeListStream[R]) Context() context.Context { return f.ctx }

func (f *fakeListStream[R]) Send(r *R) error {
	if f.sendErr != nil {
		return f.sendErr
	}
	f.sent = append(f.sent, r)
	if f.cancelAfter > 0 && len(f.sent) == f.cancelAfter {
		f.cancel()
	}
	return nil
}

// streamed runs one Stream* call on a fresh fake stream and returns the
// IDs of every message's items, one slice per message.
type streamed func(s *RuntimeServer, f *fakeListStream[batchIDs]) error

// batchIDs is the item IDs of one streamed message.
type batchIDs []string

// relay adapts a typed Stream* call to a fake stream of batchIDs: every
// response is reduced to the IDs it carries.
func relay[R any](call func(*RuntimeServer, grpc.ServerStreamingServer[R]) error, ids func(*R) []string) streamed {
	return func(s *RuntimeServer, f *fakeListStream[batchIDs]) error {
		return call(s, &idStream[R]{ServerStream: f.ServerStream, out: f, ids: ids})
	}
}

// idStream forwards the IDs of each response to a fakeListStream.
type idStream[R any] struct {
	grpc.ServerStream
	out *fakeListStream[batchIDs]
	ids func(*R) []string
}

func (s *idStream[R]) Context() context.Context { return s.out.Context() }

func (s *idStream[R]) Send(r *R) error {
	b := batchIDs(s.ids(r))
	return s.out.Send(&b)
}

func podIDs(r *runtimeapi.StreamPodSandboxesResponse) (out []string) {
	for _, p := range r.GetPodSandboxes() {
		out = append(out, p.GetId())
	}
	return out
}

func containerIDs(r *runtimeapi.StreamContainersResponse) (out []string) {
	for _, c := range r.GetContainers() {
		out = append(out, c.GetId())
	}
	return out
}

func containerStatsIDs(r *runtimeapi.StreamContainerStatsResponse) (out []string) {
	for _, c := range r.GetContainerStats() {
		out = append(out, c.GetAttributes().GetId())
	}
	return out
}

func podStatsIDs(r *runtimeapi.StreamPodSandboxStatsResponse) (out []string) {
	for _, p := range r.GetPodSandboxStats() {
		out = append(out, p.GetAttributes().GetId())
	}
	return out
}

func podMetricsIDs(r *runtimeapi.StreamPodSandboxMetricsResponse) (out []string) {
	for _, p := range r.GetPodSandboxMetrics() {
		out = append(out, p.GetPodSandboxId())
	}
	return out
}

// streamCase is one Stream* call with a filter, the IDs the unary List
// call returns for the same filter, and the IDs expected.
type streamCase struct {
	name   string
	stream streamed
	list   func(*RuntimeServer) ([]string, error)
	want   []string
}

func podsCase(name string, f *runtimeapi.PodSandboxFilter, want ...string) streamCase {
	return streamCase{name: "pods/" + name, want: want,
		stream: relay(func(s *RuntimeServer, st grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
			return s.StreamPodSandboxes(&runtimeapi.StreamPodSandboxesRequest{Filter: f}, st)
		}, podIDs),
		list: func(s *RuntimeServer) ([]string, error) {
			r, err := s.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{Filter: f})
			return podIDs(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: r.GetItems()}), err
		}}
}

func containersCase(name string, f *runtimeapi.ContainerFilter, want ...string) streamCase {
	return streamCase{name: "containers/" + name, want: want,
		stream: relay(func(s *RuntimeServer, st grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
			return s.StreamContainers(&runtimeapi.StreamContainersRequest{Filter: f}, st)
		}, containerIDs),
		list: func(s *RuntimeServer) ([]string, error) {
			r, err := s.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{Filter: f})
			return containerIDs(&runtimeapi.StreamContainersResponse{Containers: r.GetContainers()}), err
		}}
}

func containerStatsCase(name string, f *runtimeapi.ContainerStatsFilter, want ...string) streamCase {
	return streamCase{name: "container-stats/" + name, want: want,
		stream: relay(func(s *RuntimeServer, st grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
			return s.StreamContainerStats(&runtimeapi.StreamContainerStatsRequest{Filter: f}, st)
		}, containerStatsIDs),
		list: func(s *RuntimeServer) ([]string, error) {
			r, err := s.ListContainerStats(context.Background(), &runtimeapi.ListContainerStatsRequest{Filter: f})
			return containerStatsIDs(&runtimeapi.StreamContainerStatsResponse{ContainerStats: r.GetStats()}), err
		}}
}

func podStatsCase(name string, f *runtimeapi.PodSandboxStatsFilter, want ...string) streamCase {
	return streamCase{name: "pod-stats/" + name, want: want,
		stream: relay(func(s *RuntimeServer, st grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
			return s.StreamPodSandboxStats(&runtimeapi.StreamPodSandboxStatsRequest{Filter: f}, st)
		}, podStatsIDs),
		list: func(s *RuntimeServer) ([]string, error) {
			r, err := s.ListPodSandboxStats(context.Background(), &runtimeapi.ListPodSandboxStatsRequest{Filter: f})
			return podStatsIDs(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: r.GetStats()}), err
		}}
}

func podMetricsCase(want ...string) streamCase {
	return streamCase{name: "pod-metrics", want: want,
		stream: relay(func(s *RuntimeServer, st grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
			return s.StreamPodSandboxMetrics(&runtimeapi.StreamPodSandboxMetricsRequest{}, st)
		}, podMetricsIDs),
		list: func(s *RuntimeServer) ([]string, error) {
			r, err := s.ListPodSandboxMetrics(context.Background(), &runtimeapi.ListPodSandboxMetricsRequest{})
			return podMetricsIDs(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: r.GetPodMetrics()}), err
		}}
}

// runStream runs tc's stream call and returns its messages' IDs.
func runStream(t *testing.T, s *RuntimeServer, tc streamCase) []batchIDs {
	t.Helper()
	f := newFakeListStream[batchIDs]()
	if err := tc.stream(s, f); err != nil {
		t.Fatalf("stream: %v", err)
	}
	var out []batchIDs
	for _, b := range f.sent {
		out = append(out, *b)
	}
	return out
}

// TestStreamListsMatchUnary checks every Stream* call sends, for each
// filter, exactly the items of its unary List call, in one batch, and
// nothing for an empty result.
func TestStreamListsMatchUnary(t *testing.T) {
	s := observeServer(t, &fakeStats{})
	ready := &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	cases := []streamCase{
		podsCase("all", nil, "pod-a", "pod-b"),
		podsCase("by id prefix", &runtimeapi.PodSandboxFilter{Id: "pod-b"}, "pod-b"),
		podsCase("by label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "a"}}, "pod-a"),
		podsCase("by state", &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}),
		containersCase("all", nil, "ctr-a1", "ctr-a2", "ctr-b1"),
		containersCase("by pod", &runtimeapi.ContainerFilter{PodSandboxId: "pod-a"}, "ctr-a1", "ctr-a2"),
		containersCase("by state", &runtimeapi.ContainerFilter{State: ready}, "ctr-a1", "ctr-b1"),
		containersCase("by label", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"tier": "back"}}, "ctr-b1"),
		containersCase("no match", &runtimeapi.ContainerFilter{Id: "nope"}),
		containerStatsCase("all", nil, "ctr-a1", "ctr-a2", "ctr-b1"),
		containerStatsCase("by pod and label", &runtimeapi.ContainerStatsFilter{PodSandboxId: "pod-a", LabelSelector: map[string]string{"tier": "front"}}, "ctr-a1"),
		containerStatsCase("no match", &runtimeapi.ContainerStatsFilter{PodSandboxId: "pod-b", Id: "ctr-a"}),
		podStatsCase("all", nil, "pod-a", "pod-b"),
		podStatsCase("by label", &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "b"}}, "pod-b"),
		podStatsCase("no match", &runtimeapi.PodSandboxStatsFilter{Id: "x"}),
		podMetricsCase("pod-a", "pod-b"),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runStream(t, s, tc)
			list, err := tc.list(s)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if !slices.Equal(list, tc.want) {
				t.Fatalf("unary list %v, want %v", list, tc.want)
			}
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("an empty list sent %d messages %v, want none", len(got), got)
				}
				return
			}
			if len(got) != 1 || !slices.Equal(got[0], tc.want) {
				t.Fatalf("sent %v, want one message %v", got, tc.want)
			}
		})
	}
}

// manyServer is a RuntimeServer whose store holds pods pods, each with
// one container carrying an annotation of annotationBytes bytes.
func manyServer(t *testing.T, pods, annotationBytes int) *RuntimeServer {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	big := map[string]string{"blob": strings.Repeat("x", annotationBytes)}
	for i := range pods {
		pid, cid := fmt.Sprintf("pod-%04d", i), fmt.Sprintf("ctr-%04d", i)
		st.Pods.Add(pid, store.Pod{ID: pid, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: pid}}})
		st.Containers.Add(cid, store.Container{ID: cid, PodID: pid, CgroupPath: "/arbor-" + cid,
			State:  runtimeapi.ContainerState_CONTAINER_RUNNING,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: cid}, Annotations: big}})
	}
	return NewRuntimeServer(RuntimeInfo{}, Deps{Store: st, Stats: &fakeStats{}, Events: events.NewContainerBroker(8, quietLog())}, quietLog())
}

// TestStreamBatchesByCount checks a long list is cut into batches of
// streamBatchItems, every item sent once and in order.
func TestStreamBatchesByCount(t *testing.T) {
	const n = 2*streamBatchItems + 3
	s := manyServer(t, n, 0)
	cases := []streamCase{
		podsCase("all", nil), containersCase("all", nil), containerStatsCase("all", nil),
		podStatsCase("all", nil), podMetricsCase(),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runStream(t, s, tc)
			var sizes []int
			for _, b := range got {
				sizes = append(sizes, len(b))
			}
			if want := []int{streamBatchItems, streamBatchItems, 3}; !slices.Equal(sizes, want) {
				t.Fatalf("batch sizes %v, want %v", sizes, want)
			}
			list, err := tc.list(s)
			if err != nil {
				t.Fatal(err)
			}
			if all := slices.Concat(got...); !slices.Equal(all, list) {
				t.Fatalf("streamed %d items, unary list has %d, or their order differs", len(all), len(list))
			}
		})
	}
}

// TestStreamBatchesBySize checks large items close a batch before it
// passes streamBatchBytes, and an item larger than that travels alone.
func TestStreamBatchesBySize(t *testing.T) {
	cases := []struct {
		name       string
		annotation int
		pods       int
		wantSizes  []int
	}{
		// Each container is a little over 1 MiB: three fit in 4 MiB.
		{name: "three per batch", annotation: 1 << 20, pods: 7, wantSizes: []int{3, 3, 1}},
		// Each container is over the limit: one per message.
		{name: "oversized alone", annotation: streamBatchBytes, pods: 2, wantSizes: []int{1, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := manyServer(t, tc.pods, tc.annotation)
			f := newFakeListStream[runtimeapi.StreamContainersResponse]()
			if err := s.StreamContainers(&runtimeapi.StreamContainersRequest{}, f); err != nil {
				t.Fatal(err)
			}
			var sizes []int
			for _, r := range f.sent {
				sizes = append(sizes, len(r.GetContainers()))
				if len(r.GetContainers()) > 1 && proto.Size(r) > streamBatchBytes+1024 {
					t.Errorf("a batch of %d is %d bytes", len(r.GetContainers()), proto.Size(r))
				}
			}
			if !slices.Equal(sizes, tc.wantSizes) {
				t.Fatalf("batch sizes %v, want %v", sizes, tc.wantSizes)
			}
		})
	}
}

// TestStreamStopsWhenContextEnds checks a stream whose client goes away
// sends nothing more and ends with codes.Canceled.
func TestStreamStopsWhenContextEnds(t *testing.T) {
	s := manyServer(t, 3*streamBatchItems, 0)
	t.Run("after first batch", func(t *testing.T) {
		f := newFakeListStream[runtimeapi.StreamContainerStatsResponse]()
		f.cancelAfter = 1
		err := s.StreamContainerStats(&runtimeapi.StreamContainerStatsRequest{}, f)
		if status.Code(err) != codes.Canceled || len(f.sent) != 1 {
			t.Fatalf("got %v after %d messages, want Canceled after 1", err, len(f.sent))
		}
	})
	t.Run("before start", func(t *testing.T) {
		f := newFakeListStream[runtimeapi.StreamPodSandboxesResponse]()
		f.cancel()
		err := s.StreamPodSandboxes(&runtimeapi.StreamPodSandboxesRequest{}, f)
		if status.Code(err) != codes.Canceled || len(f.sent) != 0 {
			t.Fatalf("got %v after %d messages, want Canceled after none", err, len(f.sent))
		}
	})
}

// TestStreamSendError checks a failed send ends the call with its error.
func TestStreamSendError(t *testing.T) {
	s := observeServer(t, &fakeStats{})
	f := newFakeListStream[runtimeapi.StreamContainersResponse]()
	f.sendErr = errors.New("transport closed")
	if err := s.StreamContainers(&runtimeapi.StreamContainersRequest{}, f); !errors.Is(err, f.sendErr) {
		t.Fatalf("got %v, want the send error", err)
	}
}

// TestStreamStatsWithoutCollector checks the stats streams report
// Unavailable, as their unary calls do, when no collector runs.
func TestStreamStatsWithoutCollector(t *testing.T) {
	s := observeServer(t, nil)
	calls := map[string]func() error{
		"container stats": func() error {
			return s.StreamContainerStats(&runtimeapi.StreamContainerStatsRequest{}, newFakeListStream[runtimeapi.StreamContainerStatsResponse]())
		},
		"pod stats": func() error {
			return s.StreamPodSandboxStats(&runtimeapi.StreamPodSandboxStatsRequest{}, newFakeListStream[runtimeapi.StreamPodSandboxStatsResponse]())
		},
		"pod metrics": func() error {
			return s.StreamPodSandboxMetrics(&runtimeapi.StreamPodSandboxMetricsRequest{}, newFakeListStream[runtimeapi.StreamPodSandboxMetricsResponse]())
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); status.Code(err) != codes.Unavailable {
				t.Fatalf("got %v, want Unavailable", err)
			}
		})
	}
}
