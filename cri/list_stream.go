package cri

import (
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Limits of one response of the Stream* list calls: a batch closes at
// streamBatchItems items, or before the item that would take its encoded
// size past streamBatchBytes (a quarter of the 16 MiB a kubelet accepts,
// so the envelope and a large last item always fit). An item larger than
// streamBatchBytes alone travels alone.
const (
	streamBatchItems = 256
	streamBatchBytes = 4 << 20
)

// StreamPodSandboxes sends the pods ListPodSandbox returns for the same
// filter, in batches of at least one; an empty list sends no message.
func (s *RuntimeServer) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	return sendBatches(stream, s.pods(req.GetFilter()), func(b []*runtimeapi.PodSandbox) *runtimeapi.StreamPodSandboxesResponse {
		return &runtimeapi.StreamPodSandboxesResponse{PodSandboxes: b}
	})
}

// StreamContainers sends the containers ListContainers returns for the
// same filter, in batches of at least one; an empty list sends no message.
func (s *RuntimeServer) StreamContainers(req *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	return sendBatches(stream, s.containers(req.GetFilter()), func(b []*runtimeapi.Container) *runtimeapi.StreamContainersResponse {
		return &runtimeapi.StreamContainersResponse{Containers: b}
	})
}

// StreamContainerStats sends the stats ListContainerStats returns for the
// same filter, reading each container just before it is batched; a
// container whose counters cannot be read is logged and left out.
func (s *RuntimeServer) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	src, err := s.statsSource()
	if err != nil {
		return err
	}
	seq := s.containerStats(stream.Context(), src, req.GetFilter())
	return sendBatches(stream, seq, func(b []*runtimeapi.ContainerStats) *runtimeapi.StreamContainerStatsResponse {
		return &runtimeapi.StreamContainerStatsResponse{ContainerStats: b}
	})
}

// StreamPodSandboxStats sends the stats ListPodSandboxStats returns for
// the same filter, reading each pod just before it is batched; a pod whose
// counters cannot be read is logged and left out.
func (s *RuntimeServer) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	src, err := s.statsSource()
	if err != nil {
		return err
	}
	seq := s.podStats(stream.Context(), src, req.GetFilter())
	return sendBatches(stream, seq, func(b []*runtimeapi.PodSandboxStats) *runtimeapi.StreamPodSandboxStatsResponse {
		return &runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: b}
	})
}

// StreamPodSandboxMetrics sends the metrics ListPodSandboxMetrics returns,
// reading each pod just before it is batched.
func (s *RuntimeServer) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	src, err := s.statsSource()
	if err != nil {
		return err
	}
	seq := s.allPodMetrics(stream.Context(), src)
	return sendBatches(stream, seq, func(b []*runtimeapi.PodSandboxMetrics) *runtimeapi.StreamPodSandboxMetricsResponse {
		return &runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: b}
	})
}

// sendBatches sends every item of seq exactly once, in order, wrapped by
// wrap into responses within the batch limits. It sends no message for an
// empty seq (the CRI asks for lists of at least one item) and stops with
// the context's status, sending nothing more, once the client's context
// ends; a send error ends it with that error.
func sendBatches[T proto.Message, R any](stream grpc.ServerStreamingServer[R], seq iter.Seq[T], wrap func([]T) *R) error {
	ctx := stream.Context()
	var b batch[T]
	for item := range seq {
		if err := ctx.Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		if full := b.add(item); full != nil {
			if err := stream.Send(wrap(full)); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	if len(b.items) == 0 {
		return nil
	}
	return stream.Send(wrap(b.items))
}

// batch gathers items up to the batch limits.
type batch[T proto.Message] struct {
	items []T
	bytes int
}

// add puts item into the batch. When item does not fit beside the items
// already gathered, it returns those as a full batch and starts a new one
// with item; otherwise it returns nil.
func (b *batch[T]) add(item T) []T {
	n := proto.Size(item)
	var full []T
	if len(b.items) > 0 && (len(b.items) >= streamBatchItems || b.bytes+n > streamBatchBytes) {
		full, b.items, b.bytes = b.items, nil, 0
	}
	b.items = append(b.items, item)
	b.bytes += n
	return full
}
