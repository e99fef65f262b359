package cri

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

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

// CheckpointContainer is not built: it needs a working CRIU, and says
// whether this node has one.
func (s *RuntimeServer) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, status.Error(codes.Unimplemented, "CheckpointContainer: "+criuState())
}

// criuState says, once per process, why checkpointing cannot be done
// here: no criu, a criu that fails its own `criu check` on this kernel,
// or (with a working criu) that Arbor does not build it yet.
var criuState = sync.OnceValue(func() string {
	path, err := exec.LookPath("criu")
	if err != nil {
		return "checkpointing needs CRIU, and criu is not installed on this node"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "check").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("checkpointing needs CRIU, and `criu check` fails on this node (%v): %s", err, firstLine(out))
	}
	return "checkpointing is not built yet (criu check passes on this node)"
})

// firstLine is the first non-empty line of out, trimmed.
func firstLine(out []byte) string {
	for line := range strings.SplitSeq(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return "no output"
}
