package stream

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci"
)

// GetExec validates req and returns the single-use URL of its exec stream.
// Errors are gRPC statuses: InvalidArgument for a bad request, NotFound
// for an unknown container, FailedPrecondition for one that does not run.
func (s *Service) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := validateExec(req); err != nil {
		return nil, err
	}
	if err := s.containerRunning(req.GetContainerId()); err != nil {
		return nil, err
	}
	return s.lib.GetExec(req)
}

// GetAttach validates req and returns the single-use URL of its attach
// stream, with errors as GetExec.
func (s *Service) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := validateStreams(req.GetContainerId(), req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty()); err != nil {
		return nil, err
	}
	if err := s.containerRunning(req.GetContainerId()); err != nil {
		return nil, err
	}
	return s.lib.GetAttach(req)
}

// GetPortForward validates req and returns the single-use URL of its
// port-forward stream: InvalidArgument for a missing pod ID or a port
// outside 1-65535, NotFound for an unknown pod, FailedPrecondition for a
// pod that is not ready. An empty port list is valid (SPDY clients name
// the port of each stream).
func (s *Service) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, status.Error(codes.InvalidArgument, "pod_sandbox_id is required")
	}
	for _, p := range req.GetPort() {
		if err := validPort(p); err != nil {
			return nil, err
		}
	}
	if _, err := s.backend.PodNetNS(req.GetPodSandboxId()); err != nil {
		return nil, lookupStatus("pod sandbox", req.GetPodSandboxId(), err)
	}
	return s.lib.GetPortForward(req)
}

func validateExec(req *runtimeapi.ExecRequest) error {
	if err := validateStreams(req.GetContainerId(), req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty()); err != nil {
		return err
	}
	if len(req.GetCmd()) == 0 || req.GetCmd()[0] == "" {
		return status.Error(codes.InvalidArgument, "cmd is required")
	}
	return nil
}

// validateStreams checks what exec and attach have in common.
func validateStreams(id string, stdin, stdout, stderr, tty bool) error {
	switch {
	case id == "":
		return status.Error(codes.InvalidArgument, "container_id is required")
	case !stdin && !stdout && !stderr:
		return status.Error(codes.InvalidArgument, "one of stdin, stdout or stderr must be set")
	case tty && stderr:
		return status.Error(codes.InvalidArgument, "tty and stderr cannot both be set: a terminal has one output stream")
	}
	return nil
}

// validPort accepts TCP ports 1-65535.
func validPort(p int32) error {
	if p < 1 || p > 65535 {
		return status.Errorf(codes.InvalidArgument, "port %d is outside 1-65535", p)
	}
	return nil
}

func (s *Service) containerRunning(id string) error {
	if err := s.backend.ContainerRunning(id); err != nil {
		return lookupStatus("container", id, err)
	}
	return nil
}

// lookupStatus turns a Backend lookup error into a gRPC status error.
func lookupStatus(kind, id string, err error) error {
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, oci.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s %s not found: %v", kind, id, err)
	case errors.Is(err, ErrNotRunning), errors.Is(err, oci.ErrNotRunning):
		return status.Errorf(codes.FailedPrecondition, "%s %s is not running: %v", kind, id, err)
	}
	return status.Errorf(codes.Internal, "looking up %s %s: %v", kind, id, err)
}
