package cri

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// ContainerStatus reports a container's state, exit and configuration;
// verbose adds its runtime spec and process as JSON.
func (s *RuntimeServer) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if e.Get().State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		// The exit monitor may not have seen a fresh exit yet.
		if _, err := s.recordExit(e); err != nil {
			Logger(ctx).Warn("Cannot read exit file", "container_id", e.ID, "error", err)
		}
	}
	c := e.Get()
	resp := &runtimeapi.ContainerStatusResponse{Status: containerStatus(&c)}
	if req.GetVerbose() {
		resp.Info = map[string]string{"info": containerInfo(&c)}
	}
	return resp, nil
}

func containerStatus(c *store.Container) *runtimeapi.ContainerStatus {
	cfg := c.Config
	return &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    cfg.GetMetadata(),
		State:       c.State,
		CreatedAt:   c.CreatedAt,
		StartedAt:   c.StartedAt,
		FinishedAt:  c.FinishedAt,
		ExitCode:    c.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: c.ImageName, UserSpecifiedImage: c.Image},
		ImageRef:    c.DigestedImage(),
		ImageId:     c.ImageRef,
		Reason:      c.Reason,
		Message:     c.Message,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      cfg.GetMounts(),
		LogPath:     c.LogPath,
		Resources:   &runtimeapi.ContainerResources{Linux: c.Resources},
		User:        c.User,
	}
}

// containerInfo is the verbose JSON: the record, the pid and the spec.
func containerInfo(c *store.Container) string {
	info := map[string]any{
		"sandboxID": c.PodID, "pid": c.Pid, "bundle": c.BundleDir, "rootfs": c.Rootfs,
		"runtimeHandler": c.Handler, "cgroupPath": c.CgroupPath,
	}
	if data, err := os.ReadFile(filepath.Join(c.BundleDir, "config.json")); err == nil {
		info["runtimeSpec"] = json.RawMessage(data)
	}
	b, _ := json.Marshal(info)
	return string(b)
}
