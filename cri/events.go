package cri

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// GetContainerEvents streams container events until the client goes away.
// A client too slow to keep up is dropped by the broker; its stream then
// ends with ResourceExhausted, and the kubelet reconnects (and relists).
// At daemon stop the broker closes and the stream ends with Unavailable.
func (s *RuntimeServer) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	if s.Events == nil {
		return status.Error(codes.Unavailable, "container events are not enabled")
	}
	sub := s.Events.Subscribe()
	defer s.Events.Unsubscribe(sub)
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.Events():
			if !ok && sub.Dropped() {
				return status.Error(codes.ResourceExhausted, "the event stream fell behind and events were dropped; subscribe again")
			}
			if !ok {
				return status.Error(codes.Unavailable, "the runtime is stopping")
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// publish sends a container event: the container's ID, the status of its
// pod and the statuses of the pod's containers as the store has them now
// (a deleted container is no longer among them). Call it after the change
// is recorded. It never blocks and does nothing without a broker.
func (s *RuntimeServer) publish(t runtimeapi.ContainerEventType, c store.Container) {
	if s.Events == nil {
		return
	}
	ps := &runtimeapi.PodSandboxStatus{Id: c.PodID}
	if e, err := s.Store.Pods.Lookup(c.PodID); err == nil {
		p := e.Get()
		ps = podStatus(&p)
	}
	s.Events.Publish(&runtimeapi.ContainerEventResponse{
		ContainerId: c.ID, ContainerEventType: t, CreatedAt: time.Now().UnixNano(),
		PodSandboxStatus: ps, ContainersStatuses: s.containerStatuses(c.PodID),
	})
}

// publishPod sends a pod sandbox event, which the CRI carries as a
// container event whose container ID is the pod's ID (as containerd and
// CRI-O do). p is the pod's record after the change.
func (s *RuntimeServer) publishPod(t runtimeapi.ContainerEventType, p store.Pod) {
	if s.Events == nil {
		return
	}
	s.Events.Publish(&runtimeapi.ContainerEventResponse{
		ContainerId: p.ID, ContainerEventType: t, CreatedAt: time.Now().UnixNano(),
		PodSandboxStatus: podStatus(&p), ContainersStatuses: s.containerStatuses(p.ID),
	})
}

// containerStatuses is the status of each container of a pod.
func (s *RuntimeServer) containerStatuses(podID string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, e := range s.Store.ContainersOf(podID) {
		c := e.Get()
		out = append(out, containerStatus(&c))
	}
	return out
}
