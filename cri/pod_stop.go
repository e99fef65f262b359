package cri

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// StopPodSandbox kills the pod's containers and its infra process and
// releases its network, namespaces and /dev/shm. A missing or stopped pod
// is success: the kubelet sends it more than once.
func (s *RuntimeServer) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	e, err := s.Store.Pods.Lookup(req.GetPodSandboxId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err := s.stopPod(ctx, e); err != nil {
		return nil, err
	}
	Logger(ctx).Info("Pod sandbox stopped", "pod_sandbox_id", e.ID)
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stopPod does the stop for a caller holding the pod's Op lock. Each step
// is idempotent, so a stop that failed half-way can simply be repeated.
func (s *RuntimeServer) stopPod(ctx context.Context, e *store.Entry[store.Pod]) error {
	for _, ce := range s.Store.ContainersOf(e.ID) {
		ce.Op.Lock()
		err := s.stopContainer(ctx, ce, 0)
		ce.Op.Unlock()
		if err != nil {
			return err
		}
	}
	p := e.Get()
	wasReady := p.State == runtimeapi.PodSandboxState_SANDBOX_READY
	// A pod whose infra process died is not ready but not stopped yet.
	if (wasReady || p.InfraID != "") && s.NRI != nil {
		// Once, with the containers stopped and the pod still whole.
		nriTold(ctx, "StopPodSandbox", p.ID, s.NRI.StopPodSandbox(ctx, nriPod(&p)))
	}
	if err := s.removeInfra(ctx, &p); err != nil {
		return err
	}
	if p.Network {
		if err := s.Network.Teardown(ctx, s.networkPod(&p)); err != nil {
			return fmt.Errorf("tearing down network: %w", err)
		}
	}
	if err := s.point(ctx, "StopPodSandbox.after-network"); err != nil {
		return err
	}
	if err := sandbox.UnmountShm(filepath.Join(p.Dir, shmDir)); err != nil {
		return err
	}
	if err := s.unpinPod(&p); err != nil {
		return fmt.Errorf("releasing namespaces: %w", err)
	}
	p = e.Update(func(p *store.Pod) {
		p.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		p.Network, p.InfraID, p.InfraPid = false, "", 0
		p.NS = store.Namespaces{}
	})
	if err := s.Store.SavePod(p); err != nil {
		return err
	}
	if wasReady {
		// Once: a remove, or the kubelet's repeated stops, stop it again.
		s.publishPod(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, p)
	}
	return nil
}
