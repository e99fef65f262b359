package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/images"
	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// startInfra runs the pause process of a pod that shares a PID namespace;
// it is that namespace's PID 1 for the pod's whole life. Other pods need
// none (see sandbox.NeedsInfra).
func (s *RuntimeServer) startInfra(ctx context.Context, p *store.Pod, u *undo) error {
	if !sandbox.NeedsInfra(p.Config) {
		return nil
	}
	img, err := s.pauseImage(ctx)
	if err != nil {
		return err
	}
	// The infra container takes the pod's ID, so that restore can find it
	// from the pod's record alone.
	c := store.Container{ID: p.ID, Name: "k8s_POD_" + p.Name, ImageRef: img.ID}
	c.BundleDir = s.bundleDir(c.ID)
	if err := s.createRootfs(ctx, &c, p, u); err != nil {
		return err
	}
	in := spec.SandboxInput{
		ID: c.ID, Config: p.Config, PauseCommand: s.PauseCommand, RootfsPath: c.Rootfs,
		Namespaces: spec.NamespacePaths{Network: p.NS.Net, User: p.NS.User}, Files: podFiles(p), Host: s.Host,
	}
	if img.Config != nil {
		in.Image = &img.Config.Config
	}
	sp, err := spec.GenerateSandbox(in)
	if err != nil {
		return invalid("config", "%v", err)
	}
	// Hooks see the infra container as one more container of the pod,
	// with the pod's annotations.
	if err := s.injectHooks(ctx, c.ID, sp, false); err != nil {
		return err
	}
	if err := writeSpec(c.BundleDir, sp, u); err != nil {
		return err
	}
	pid, err := s.OCI.Create(ctx, oci.CreateOptions{ID: c.ID, Handler: p.Handler, BundleDir: c.BundleDir,
		LogPath: filepath.Join(c.BundleDir, "infra.log")})
	if err != nil {
		return err
	}
	u.push("deleting infra container", func(ctx context.Context) error { return s.OCI.Delete(ctx, c.ID) })
	if err := s.OCI.Start(ctx, c.ID); err != nil {
		return err
	}
	p.InfraID, p.InfraPid = c.ID, pid
	p.NS.PID = fmt.Sprintf("/proc/%d/ns/pid", pid)
	return nil
}

// infraExited handles the exit of what may be a pod's infra process (its
// ID is the pod's). Its PID namespace died with it, so no container can
// join it any more: the pod is marked not ready, with a stopped event, as
// containerd does when a sandbox's task exits, and the kubelet then stops
// it and makes a new one. The pod's stop or removal, which ends the infra
// process itself, holds the pod's lock meanwhile; so the check runs apart
// from the exit monitor, after it.
func (s *RuntimeServer) infraExited(id string) {
	e, err := s.Store.Pods.Lookup(id)
	if err != nil || e.ID != id {
		return
	}
	safe.Go(s.log, "infra exit of pod "+id, func() {
		e.Op.Lock()
		defer e.Op.Unlock()
		s.markInfraGone(e)
	})
}

// markInfraGone marks the pod of e, whose Op lock the caller holds, not
// ready if it is ready and its infra process has exited.
func (s *RuntimeServer) markInfraGone(e *store.Entry[store.Pod]) {
	p := e.Get()
	if e.Removed() || p.State != runtimeapi.PodSandboxState_SANDBOX_READY || p.InfraID == "" {
		return
	}
	code, _, exited, err := s.OCI.ReadExit(p.InfraID)
	if err != nil || !exited {
		return
	}
	p = e.Update(func(p *store.Pod) { p.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY })
	if err := s.Store.SavePod(p); err != nil {
		s.log.Warn("Cannot save a pod whose infra process exited", "pod_sandbox_id", p.ID, "error", err)
	}
	s.publishPod(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, p)
	s.log.Warn("Infra process of a pod exited: the pod is not ready", "pod_sandbox_id", p.ID, "exit_code", code)
}

// pauseImage returns the pause image, pulling it the first time.
func (s *RuntimeServer) pauseImage(ctx context.Context) (*images.Image, error) {
	ref := s.Images.PauseImage()
	img, err := s.Images.Status(ctx, ref)
	if errors.Is(err, images.ErrNotFound) {
		Logger(ctx).Info("Pulling pause image", "image", ref)
		if _, err = s.Images.Pull(ctx, ref, nil); err == nil {
			img, err = s.Images.Status(ctx, ref)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pause image %s: %w", ref, err)
	}
	return img, nil
}

// removeInfra stops and removes the pod's infra container, if it has one.
func (s *RuntimeServer) removeInfra(ctx context.Context, p *store.Pod) error {
	if p.InfraID == "" {
		return nil
	}
	if err := s.OCI.Stop(ctx, p.InfraID, syscall.SIGKILL, 0); err != nil && !errors.Is(err, oci.ErrNotFound) {
		return fmt.Errorf("stopping infra container: %w", err)
	}
	if err := s.OCI.Delete(ctx, p.InfraID); err != nil {
		return fmt.Errorf("deleting infra container: %w", err)
	}
	if err := s.removeRootfs(p.InfraID); err != nil {
		return err
	}
	return os.RemoveAll(s.bundleDir(p.InfraID))
}

// writeSpec writes config.json into a new bundle folder.
func writeSpec(dir string, sp any, u *undo) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating bundle folder: %w", err)
	}
	u.push("removing bundle", func(context.Context) error { return os.RemoveAll(dir) })
	data, err := json.Marshal(sp)
	if err != nil {
		return fmt.Errorf("encoding spec: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}
