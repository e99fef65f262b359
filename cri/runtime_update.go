package cri

import (
	"context"
	"os/exec"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateRuntimeConfig takes the pod CIDR the kubelet hands out and passes
// it on to the network layer.
func (s *RuntimeServer) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if cidr == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	}
	if err := s.Network.UpdatePodCIDR(cidr); err != nil {
		return nil, invalid("runtime_config.network_config.pod_cidr", "%v", err)
	}
	Logger(ctx).Info("Pod CIDR updated", "pod_cidr", cidr)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// CheckpointContainer is not built: it needs CRIU, and says why.
func (s *RuntimeServer) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	why := "checkpointing is not built yet"
	if _, err := exec.LookPath("criu"); err != nil {
		why += " and criu is not installed on this node"
	}
	return nil, status.Error(codes.Unimplemented, "CheckpointContainer: "+why)
}
