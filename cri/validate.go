package cri

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// invalid is an InvalidArgument status naming the field.
func invalid(field, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, args...))
}

// newID returns a 64-character hex ID.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validatePodConfig(cfg *runtimeapi.PodSandboxConfig) error {
	if cfg == nil {
		return invalid("config", "is required")
	}
	md := cfg.GetMetadata()
	switch {
	case md == nil:
		return invalid("config.metadata", "is required")
	case md.GetName() == "":
		return invalid("config.metadata.name", "is required")
	case md.GetNamespace() == "":
		return invalid("config.metadata.namespace", "is required")
	case md.GetUid() == "":
		return invalid("config.metadata.uid", "is required")
	}
	return nil
}

// podName is the unique name of a pod, as the kubelet builds it.
func podName(md *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
}

func validateContainerConfig(cfg *runtimeapi.ContainerConfig) error {
	if cfg == nil {
		return invalid("config", "is required")
	}
	if cfg.GetMetadata() == nil || cfg.GetMetadata().GetName() == "" {
		return invalid("config.metadata.name", "is required")
	}
	if cfg.GetImage().GetImage() == "" {
		return invalid("config.image.image", "is required")
	}
	return nil
}

// containerName is the unique name of a container, scoped by its pod.
func containerName(cmd *runtimeapi.ContainerMetadata, pmd *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%s_%d", cmd.GetName(), pmd.GetName(), pmd.GetNamespace(), pmd.GetUid(), cmd.GetAttempt())
}

// logPath joins the pod's log folder and the container's relative log path,
// refusing a path that leaves the pod's folder. An empty path means no log
// file.
func logPath(podLogDir, rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if podLogDir == "" {
		if !filepath.IsAbs(rel) {
			return "", invalid("config.log_path", "%q is relative but the pod has no log_directory", rel)
		}
		return filepath.Clean(rel), nil
	}
	full := filepath.Join(podLogDir, rel)
	if filepath.IsAbs(rel) || !strings.HasPrefix(full, filepath.Clean(podLogDir)+string(filepath.Separator)) {
		return "", invalid("config.log_path", "%q leaves the pod's log directory %s", rel, podLogDir)
	}
	return full, nil
}
