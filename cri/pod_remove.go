package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// RemovePodSandbox stops the pod if needed and removes it with all its
// containers, its folders and the cgroup folders it created. A missing pod
// is success.
func (s *RuntimeServer) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	e, err := s.Store.Pods.Lookup(req.GetPodSandboxId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err := s.removePod(ctx, e); err != nil {
		return nil, err
	}
	Logger(ctx).Info("Pod sandbox removed", "pod_sandbox_id", e.ID)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func (s *RuntimeServer) removePod(ctx context.Context, e *store.Entry[store.Pod]) error {
	if err := s.stopPod(ctx, e); err != nil {
		return err
	}
	if err := s.Store.SavePod(e.Update(func(p *store.Pod) { p.Phase = store.PhaseRemoving })); err != nil {
		return err
	}
	for _, ce := range s.Store.ContainersOf(e.ID) {
		ce.Op.Lock()
		err := s.removeContainer(ctx, ce)
		ce.Op.Unlock()
		if err != nil {
			return err
		}
	}
	p := e.Get()
	if err := s.removePodCgroups(p.Cgroups); err != nil {
		return err
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("removing pod folder: %w", err)
	}
	if err := s.point(ctx, "RemovePodSandbox.before-state-write"); err != nil {
		return err
	}
	if err := s.Store.DeletePod(p.ID); err != nil {
		return err
	}
	s.Store.Pods.Remove(p.ID, p.Name)
	s.publishPod(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, p)
	if s.NRI != nil {
		nriTold(ctx, "RemovePodSandbox", p.ID, s.NRI.RemovePodSandbox(ctx, nriPod(&p)))
	}
	return nil
}

// removePodCgroups removes the cgroup folders the pod made. A parent it
// made that still holds other pods' cgroups stays, and is remembered: it
// is removed once the last pod under it is gone, whichever pod that is.
func (s *RuntimeServer) removePodCgroups(made []string) error {
	if err := sandbox.RemoveCgroups(made); err != nil {
		return fmt.Errorf("removing cgroups: %w", err)
	}
	return s.Store.UpdateLeftCgroups(func(left []string) []string {
		for _, d := range made {
			if exists(d) && !slices.Contains(left, d) {
				left = append(left, d)
			}
		}
		return sweepCgroups(left)
	})
}

// sweepCgroups removes the folders of left that are now empty, deepest
// first, and returns those that remain.
func sweepCgroups(left []string) []string {
	slices.SortFunc(left, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var keep []string
	for _, d := range left {
		if !exists(d) {
			continue
		}
		if cgroupEmpty(d) && os.Remove(d) == nil {
			continue
		}
		keep = append(keep, d)
	}
	return keep
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
