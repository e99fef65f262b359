package cri

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/services/stream"
	"github.com/arbor-cri/arbor/store"
)

// Streamer hands out the URLs of the streaming service for Exec, Attach
// and PortForward; the service then serves them on its own port.
type Streamer interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

// SetStreamer connects the streaming service, which is built after the
// RuntimeServer because it uses it as its backend.
func (s *RuntimeServer) SetStreamer(st Streamer) { s.streamer = st }

// Exec returns the URL of an interactive exec session.
func (s *RuntimeServer) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.streamer.GetExec(req)
}

// Attach returns the URL of an attach session to a container's stdio.
func (s *RuntimeServer) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.streamer.GetAttach(req)
}

// PortForward returns the URL of a port-forward session into a pod.
func (s *RuntimeServer) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.streamer.GetPortForward(req)
}

// The methods below make the RuntimeServer the streaming service's
// backend (stream.Backend).

// ContainerRunning reports whether id names a running container.
func (s *RuntimeServer) ContainerRunning(id string) error {
	_, err := s.runningContainer(id)
	return err
}

func (s *RuntimeServer) runningContainer(id string) (store.Container, error) {
	e, err := s.Store.Containers.Lookup(id)
	if err != nil {
		return store.Container{}, fmt.Errorf("%w: %v", stream.ErrNotFound, err)
	}
	c := e.Get()
	if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return c, fmt.Errorf("container %s is %s: %w", c.ID, stateName(c.State), stream.ErrNotRunning)
	}
	return c, nil
}

// PodNetNS returns the network namespace of a ready pod; "" means the host's.
func (s *RuntimeServer) PodNetNS(podID string) (string, error) {
	e, err := s.Store.Pods.Lookup(podID)
	if err != nil {
		return "", fmt.Errorf("%w: %v", stream.ErrNotFound, err)
	}
	p := e.Get()
	if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return "", fmt.Errorf("pod sandbox %s is not ready: %w", p.ID, stream.ErrNotRunning)
	}
	return p.NS.Net, nil
}

// ExecIn runs an interactive command in a running container.
func (s *RuntimeServer) ExecIn(ctx context.Context, id string, opts oci.ExecOptions) (int, error) {
	c, err := s.runningContainer(id)
	if err != nil {
		return 0, err
	}
	return s.OCI.ExecProcess(ctx, c.ID, opts)
}

// AttachTo connects to a running container's stdio through conmon.
func (s *RuntimeServer) AttachTo(ctx context.Context, id string, opts stream.AttachOptions) error {
	c, err := s.runningContainer(id)
	if err != nil {
		return err
	}
	return stream.AttachConmon(ctx, s.OCI, s.log, c.ID, c.Config.GetStdinOnce(), opts)
}
