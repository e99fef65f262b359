package cri

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// StartContainer starts a created container.
func (s *RuntimeServer) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return nil, failedPrecondition("container %s was removed", e.ID)
	}
	if st := e.Get().State; st != runtimeapi.ContainerState_CONTAINER_CREATED {
		return nil, failedPrecondition("container %s is %s, not created", e.ID, stateName(st))
	}
	// As containerd: not in a stopped pod, whose namespaces are released.
	// A stop that comes after this check waits for the container's lock.
	podID := e.Get().PodID
	if pe, err := s.Store.Pods.Lookup(podID); err != nil || pe.Get().State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, failedPrecondition("pod sandbox %s of container %s is not ready", podID, e.ID)
	}
	// Taken before the start: a process that exits at once must not seem
	// to finish before it started.
	started := time.Now().UnixNano()
	pod, ctr := s.nriPair(e.Get())
	if s.NRI != nil {
		if err := s.NRI.StartContainer(ctx, pod, ctr); err != nil {
			return nil, fmt.Errorf("NRI plugin refused the start: %w", err)
		}
	}
	if err := s.OCI.Start(ctx, e.ID); err != nil {
		return nil, err
	}
	if err := s.point(ctx, "StartContainer.after-runtime"); err != nil {
		return nil, err
	}
	c := e.Update(func(c *store.Container) {
		c.StartedAt = started
		// The exit monitor may already have recorded a quick exit.
		if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
			c.State = runtimeapi.ContainerState_CONTAINER_RUNNING
		}
	})
	if err := s.Store.SaveContainerOf(e); err != nil {
		return nil, err
	}
	s.publish(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, c)
	if s.NRI != nil {
		nriTold(ctx, "PostStartContainer", c.ID, s.NRI.PostStartContainer(ctx, pod, nriContainer(&c, nil)))
	}
	Logger(ctx).Info("Container started", "container_id", c.ID)
	return &runtimeapi.StartContainerResponse{}, nil
}

func stateName(st runtimeapi.ContainerState) string {
	switch st {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return "created"
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return "running"
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return "exited"
	}
	return "in an unknown state"
}
