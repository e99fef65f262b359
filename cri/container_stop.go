package cri

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// StopContainer stops a running container with its stop signal and, after
// the timeout, SIGKILL. A missing or stopped container is success.
func (s *RuntimeServer) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err := s.stopContainer(ctx, e, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopContainer stops the container of e (whose Op lock the caller holds)
// and records its exit.
func (s *RuntimeServer) stopContainer(ctx context.Context, e *store.Entry[store.Container], timeout time.Duration) error {
	c := e.Get()
	if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		return nil
	}
	sig := syscall.Signal(c.StopSignal)
	if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
		timeout = 0 // never started: nothing to stop gracefully
	}
	if err := s.OCI.Stop(ctx, c.ID, sig, timeout); err != nil {
		return fmt.Errorf("stopping container %s: %w", c.ID, err)
	}
	_, err := s.recordExit(e)
	return err
}
