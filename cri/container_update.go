package cri

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/store"
)

// UpdateContainerResources changes the cgroup limits of a created or
// running container.
func (s *RuntimeServer) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if st := e.Get().State; st == runtimeapi.ContainerState_CONTAINER_EXITED {
		return nil, failedPrecondition("container %s has exited", e.ID)
	}
	if req.GetLinux() == nil {
		return nil, invalid("linux", "resources are required")
	}
	res, err := s.nriUpdate(ctx, e.Get(), spec.ResourcesFromCRI(req.GetLinux(), s.Host))
	if err != nil {
		return nil, err
	}
	if err := s.OCI.UpdateResources(ctx, e.ID, res); err != nil {
		return nil, err
	}
	c := e.Update(func(c *store.Container) { c.Resources = req.GetLinux() })
	if err := s.Store.SaveContainerOf(e); err != nil {
		return nil, err
	}
	if pod, ctr := s.nriPair(c); pod != nil {
		nriTold(ctx, "PostUpdateContainer", c.ID, s.NRI.PostUpdateContainer(ctx, pod, ctr))
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog has conmon reopen the log file after the kubelet
// rotated it.
func (s *RuntimeServer) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if st := e.Get().State; st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, failedPrecondition("container %s is %s, not running", e.ID, stateName(st))
	}
	if err := s.OCI.ReopenLog(ctx, e.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// ExecSync runs a command in a running container and returns its output
// (each stream capped at 16 MiB) and exit code. When the timeout expires
// the command is killed and reaped before the call returns.
func (s *RuntimeServer) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, invalid("cmd", "is empty")
	}
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if st := e.Get().State; st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, failedPrecondition("container %s is %s, not running", e.ID, stateName(st))
	}
	timeout := time.Duration(req.GetTimeout()) * time.Second
	res, err := s.OCI.ExecSync(ctx, e.ID, req.GetCmd(), timeout)
	if errorsIsTimeout(err) {
		return nil, status.Errorf(codes.DeadlineExceeded, "command %q timed out after %s", req.GetCmd(), timeout)
	}
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: int32(res.ExitCode)}, nil
}

func errorsIsTimeout(err error) bool { return err != nil && errors.Is(err, oci.ErrTimeout) }
