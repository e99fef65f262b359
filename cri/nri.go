package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// NRI plugins (Deps.NRI) see each pod and container event. Events that
// can fail (RunPodSandbox, CreateContainer, StartContainer) fail the call;
// the others are told and a plugin's error is logged. A create blocks the
// synchronization of a plugin connecting meanwhile until the new object is
// listed, so that plugin gets it in its snapshot or as an event.

// nriTimeout bounds an NRI notification made outside of a CRI call (an
// exit the monitor saw).
const nriTimeout = 10 * time.Second

// nriPod describes a pod to plugins.
func nriPod(p *store.Pod) *api.PodSandbox {
	md := p.Config.GetMetadata()
	var nss []*api.LinuxNamespace
	for typ, path := range map[string]string{"network": p.NS.Net, "ipc": p.NS.IPC, "uts": p.NS.UTS, "pid": p.NS.PID, "user": p.NS.User} {
		if path != "" {
			nss = append(nss, &api.LinuxNamespace{Type: typ, Path: path})
		}
	}
	return &api.PodSandbox{
		Id: p.ID, Name: md.GetName(), Uid: md.GetUid(), Namespace: md.GetNamespace(),
		Labels: p.Config.GetLabels(), Annotations: p.Config.GetAnnotations(), RuntimeHandler: p.Handler,
		Linux: &api.LinuxPodSandbox{CgroupParent: sandbox.CgroupParent(p.Config), Namespaces: nss},
		Pid:   uint32(p.InfraPid), Ips: p.IPs,
	}
}

// nriContainer describes a container to plugins; sp (its OCI spec) adds
// the process, mounts and Linux settings when given.
func nriContainer(c *store.Container, sp *specs.Spec) *api.Container {
	ctr := &api.Container{
		Id: c.ID, PodSandboxId: c.PodID, Name: c.Config.GetMetadata().GetName(), State: nriState(c.State),
		Labels: c.Config.GetLabels(), Annotations: c.Config.GetAnnotations(), Pid: uint32(c.Pid),
		CreatedAt: c.CreatedAt, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, ExitCode: c.ExitCode,
		StatusReason: c.Reason, StatusMessage: c.Message,
	}
	if sp == nil {
		return ctr
	}
	if sp.Process != nil {
		ctr.Args, ctr.Env = sp.Process.Args, sp.Process.Env
	}
	ctr.Mounts, ctr.Hooks = api.FromOCIMounts(sp.Mounts), api.FromOCIHooks(sp.Hooks)
	if l := sp.Linux; l != nil {
		ctr.Linux = &api.LinuxContainer{
			Namespaces: api.FromOCILinuxNamespaces(l.Namespaces), Devices: api.FromOCILinuxDevices(l.Devices),
			Resources: api.FromOCILinuxResources(
				l.Resources,
				nil,
			), CgroupsPath: l.CgroupsPath, Sysctl: l.Sysctl,
		}
		if sp.Process != nil && sp.Process.OOMScoreAdj != nil {
			ctr.Linux.OomScoreAdj = api.Int(*sp.Process.OOMScoreAdj)
		}
	}
	return ctr
}

func nriState(st runtimeapi.ContainerState) api.ContainerState {
	switch st {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return api.ContainerState_CONTAINER_CREATED
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return api.ContainerState_CONTAINER_RUNNING
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}

// readSpec loads a container's OCI spec from its bundle.
func readSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var sp specs.Spec
	if err := json.Unmarshal(data, &sp); err != nil {
		return nil, fmt.Errorf("reading OCI spec: %w", err)
	}
	return &sp, nil
}

// Snapshot lists the ready pods and their containers for a plugin's
// synchronization (nri.Runtime).
func (s *RuntimeServer) Snapshot(context.Context) ([]*api.PodSandbox, []*api.Container) {
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	for _, e := range s.Store.Pods.All() {
		p := e.Get()
		pods = append(pods, nriPod(&p))
	}
	for _, e := range s.Store.Containers.All() {
		c := e.Get()
		sp, _ := readSpec(c.BundleDir)
		ctrs = append(ctrs, nriContainer(&c, sp))
	}
	return pods, ctrs
}

// UpdateContainers applies resource updates plugins ask for and returns
// those that failed (nri.Runtime).
func (s *RuntimeServer) UpdateContainers(
	ctx context.Context,
	updates []*api.ContainerUpdate,
) ([]*api.ContainerUpdate, error) {
	var failed []*api.ContainerUpdate
	var errs []error
	for _, u := range updates {
		if err := s.applyNRIUpdate(ctx, u); err != nil {
			if !u.GetIgnoreFailure() {
				errs = append(errs, err)
			}
			failed = append(failed, u)
		}
	}
	return failed, errors.Join(errs...)
}

// applyNRIUpdate sets the resources one plugin update names.
func (s *RuntimeServer) applyNRIUpdate(ctx context.Context, u *api.ContainerUpdate) error {
	e, err := s.Store.Containers.Lookup(u.GetContainerId())
	if err != nil {
		return err
	}
	res := u.GetLinux().GetResources().ToOCI()
	if res == nil {
		return nil
	}
	// No Op lock: this may run inside another container's create.
	if err := s.OCI.UpdateResources(ctx, e.ID, res); err != nil {
		return fmt.Errorf("updating container %s for an NRI plugin: %w", e.ID, err)
	}
	return nil
}

// nriStopped tells plugins a container has stopped; the monitor and
// StopContainer both come here, once per container (recordExit).
func (s *RuntimeServer) nriStopped(c store.Container) {
	pod, ctr := s.nriPair(c)
	if pod == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), nriTimeout)
	defer cancel()
	resp, err := s.NRI.StopContainer(ctx, pod, ctr)
	if err != nil {
		s.log.Warn("NRI plugins failed on a container stop", "container_id", c.ID, "err", err)
		return
	}
	s.nriApplyUpdates(ctx, resp.GetUpdate())
}

// nriPair describes a container and its pod to plugins; nil pair when NRI
// is off or the pod is gone.
func (s *RuntimeServer) nriPair(c store.Container) (*api.PodSandbox, *api.Container) {
	if s.NRI == nil {
		return nil, nil
	}
	pe, err := s.Store.Pods.Lookup(c.PodID)
	if err != nil {
		return nil, nil
	}
	p := pe.Get()
	return nriPod(&p), nriContainer(&c, nil)
}

// nriUpdate asks plugins about new resources for c: their answer for c
// replaces res, and their updates to other containers are applied.
func (s *RuntimeServer) nriUpdate(
	ctx context.Context,
	c store.Container,
	res *specs.LinuxResources,
) (*specs.LinuxResources, error) {
	pod, ctr := s.nriPair(c)
	if pod == nil {
		return res, nil
	}
	resp, err := s.NRI.UpdateContainer(ctx, pod, ctr, api.FromOCILinuxResources(res, nil))
	if err != nil {
		return nil, fmt.Errorf("NRI plugin refused the update: %w", err)
	}
	var others []*api.ContainerUpdate
	for _, u := range resp.GetUpdate() {
		if u.GetContainerId() != c.ID {
			others = append(others, u)
		} else if r := u.GetLinux().GetResources().ToOCI(); r != nil {
			res = r
		}
	}
	s.nriApplyUpdates(ctx, others)
	return res, nil
}

// nriRemoved tells plugins a container was removed.
func (s *RuntimeServer) nriRemoved(ctx context.Context, c store.Container) {
	if pod, ctr := s.nriPair(c); pod != nil {
		nriTold(ctx, "RemoveContainer", c.ID, s.NRI.RemoveContainer(ctx, pod, ctr))
	}
}

// nriApplyUpdates applies updates to other containers that a plugin
// returned with an event, logging those that fail.
func (s *RuntimeServer) nriApplyUpdates(ctx context.Context, updates []*api.ContainerUpdate) {
	if len(updates) == 0 {
		return
	}
	if _, err := s.UpdateContainers(ctx, updates); err != nil {
		Logger(ctx).Warn("NRI plugin updates to other containers failed", "err", err)
	}
}

// nriTold logs a plugin error for an event that cannot fail the call.
func nriTold(ctx context.Context, event, id string, err error) {
	if err != nil {
		Logger(ctx).Warn("NRI plugins failed on an event", "event", event, "id", id, "err", err)
	}
}
