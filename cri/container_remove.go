package cri

import (
	"context"
	"errors"
	"fmt"
	"os"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// RemoveContainer kills the container if it still runs and removes
// everything it had: the process, conmon, the writable layer, the bundle
// and the record. A missing container is success.
func (s *RuntimeServer) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err := s.removeContainer(ctx, e); err != nil {
		return nil, err
	}
	Logger(ctx).Info("Container removed", "container_id", e.ID)
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// removeContainer does the removal for a caller holding e's Op lock. The
// record goes last, so a crash half-way leaves a record that restore
// finishes removing.
func (s *RuntimeServer) removeContainer(ctx context.Context, e *store.Entry[store.Container]) error {
	if err := s.stopContainer(ctx, e, 0); err != nil {
		return err
	}
	c := e.Update(func(c *store.Container) { c.Phase = store.PhaseRemoving })
	if err := s.Store.SaveContainerOf(e); err != nil {
		return err
	}
	if err := s.OCI.Delete(ctx, c.ID); err != nil {
		return fmt.Errorf("deleting container process: %w", err)
	}
	if err := s.point(ctx, "RemoveContainer.after-runtime"); err != nil {
		return err
	}
	if err := s.removeRootfs(c.ID); err != nil {
		return err
	}
	if err := s.unmountImageVolumes(&c); err != nil {
		return err
	}
	if err := os.RemoveAll(c.BundleDir); err != nil {
		return fmt.Errorf("removing bundle: %w", err)
	}
	if err := s.point(ctx, "RemoveContainer.before-state-write"); err != nil {
		return err
	}
	if err := s.Store.RemoveContainerOf(e); err != nil {
		return err
	}
	s.publish(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, c)
	s.nriRemoved(ctx, c)
	return nil
}
