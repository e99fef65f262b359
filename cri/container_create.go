package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/nri"
	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/store"
)

// CreateContainer makes a container in a ready pod: a writable layer over
// the image, an OCI bundle and a created (not yet started) process under
// conmon. Every step that makes something is undone if a later one fails.
func (s *RuntimeServer) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (resp *runtimeapi.CreateContainerResponse, err error) {
	cfg := req.GetConfig()
	if err := validateContainerConfig(cfg); err != nil {
		return nil, err
	}
	podEntry, err := s.Store.Pods.Lookup(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	// Held shared until the container is listed: the pod's stop or removal
	// waits, then stops or removes the container with the rest.
	podEntry.Op.RLock()
	defer podEntry.Op.RUnlock()
	pod := podEntry.Get()
	if podEntry.Removed() {
		return nil, fmt.Errorf("pod sandbox %s was removed: %w", pod.ID, store.ErrNotFound)
	}
	if pod.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, failedPrecondition("pod sandbox %s is not ready", pod.ID)
	}
	if err := checkContainerUserNS(cfg, &pod); err != nil {
		return nil, err
	}
	lp, err := logPath(pod.Config.GetLogDirectory(), cfg.GetLogPath())
	if err != nil {
		return nil, err
	}

	c := store.Container{
		ID: newID(), PodID: pod.ID, Name: containerName(cfg.GetMetadata(), pod.Config.GetMetadata()),
		Config: cfg, Image: cfg.GetImage().GetImage(), Handler: pod.Handler, LogPath: lp,
		CreatedAt: time.Now().UnixNano(), State: runtimeapi.ContainerState_CONTAINER_CREATED,
	}
	c.BundleDir = s.bundleDir(c.ID)
	if err := s.reserveContainerName(ctx, c, req); err != nil {
		if id, ok := retriedPod(err); ok {
			return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
		}
		return nil, err
	}
	clientCtx := ctx
	ctx, cancel := detach(ctx)
	defer cancel()
	defer s.NRI.BlockSync()() // until the container is listed
	u := &undo{log: Logger(ctx)}
	defer u.onFailure(&err)
	u.push("releasing name", func(context.Context) error { s.Store.Containers.ReleaseName(c.Name, c.ID); return nil })
	c.Phase = store.PhaseCreating
	if err := s.Store.SaveContainer(c); err != nil {
		return nil, err
	}
	u.push("deleting record", func(context.Context) error { return s.Store.DeleteContainer(c.ID) })

	on := func(f func(context.Context, *store.Container, *store.Pod, *undo) error) func(context.Context, *undo) error {
		return func(ctx context.Context, u *undo) error { return f(ctx, &c, &pod, u) }
	}
	if err := s.runSteps(ctx, "CreateContainer", u, []createStep{
		{"resolving image", on(s.resolveImage), ""},
		{"creating rootfs", on(s.createRootfs), "CreateContainer.after-storage"},
		{"mounting image volumes", on(s.mountImageVolumes), ""},
		{"writing bundle", on(s.writeBundle), ""},
		{"creating process", on(s.createProcess), "CreateContainer.after-runtime"},
		{"releasing ID-mapped mounts", func(context.Context, *undo) error { return unstageIDMappedMounts(s.idmapDir(c.ID)) }, ""},
	}); err != nil {
		return nil, err
	}
	if err := s.point(ctx, "CreateContainer.before-state-write"); err != nil {
		return nil, err
	}
	c.Phase = store.PhaseReady
	if err := s.Store.SaveContainer(c); err != nil {
		return nil, err
	}
	// As for a pod: parked as it is listed when its client gave up.
	gone := clientCtx.Err()
	if gone != nil {
		s.parkContainer(ctx, c, req)
	} else {
		s.Store.Containers.Add(c.ID, c)
	}
	s.publish(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, c)
	u.release()
	if gone != nil {
		return nil, gone
	}
	Logger(ctx).Info("Container created", "container_id", c.ID, "pod_sandbox_id", pod.ID, "name", c.Name)
	return &runtimeapi.CreateContainerResponse{ContainerId: c.ID}, nil
}

func (s *RuntimeServer) resolveImage(ctx context.Context, c *store.Container, _ *store.Pod, _ *undo) error {
	img, err := s.Images.Status(ctx, c.Image)
	if err != nil {
		return fmt.Errorf("image %q for container %s: %w", c.Image, c.Config.GetMetadata().GetName(), err)
	}
	c.ImageRef = img.ID
	c.ImageName = c.Image
	if len(img.RepoTags) > 0 {
		c.ImageName = img.RepoTags[0]
	}
	c.RepoDigest = digestedRef(img.RepoDigests, c.Image, c.ImageName)
	return nil
}

// digestedRef picks, of an image's "repo@digest" names, the first in the
// repository of one of names (in order), else the first; "" when there is
// none.
func digestedRef(repoDigests []string, names ...string) string {
	if len(repoDigests) == 0 {
		return ""
	}
	for _, name := range names {
		repo := repository(name)
		for _, d := range repoDigests {
			if r, _, _ := strings.Cut(d, "@"); r == repo {
				return d
			}
		}
	}
	return repoDigests[0]
}

// repository is a reference without its tag or digest.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// createRootfs makes the container's writable layer in storage and mounts it.
func (s *RuntimeServer) createRootfs(ctx context.Context, c *store.Container, pod *store.Pod, u *undo) error {
	st := s.Images.Store()
	if _, err := st.CreateContainer(c.ID, []string{c.Name}, c.ImageRef, "", "", storageOptions(pod)); err != nil {
		return fmt.Errorf("creating storage container: %w", err)
	}
	u.push("removing storage container", func(context.Context) error { return s.removeRootfs(c.ID) })
	mp, err := st.Mount(c.ID, "")
	if err != nil {
		return fmt.Errorf("mounting rootfs: %w", err)
	}
	c.Rootfs = mp
	if podUserNS(pod.Config) != nil {
		return makeTraversable(mp)
	}
	return nil
}

// removeRootfs unmounts and deletes a container's writable layer; a
// missing one is fine.
func (s *RuntimeServer) removeRootfs(id string) error {
	st := s.Images.Store()
	if _, err := st.Unmount(id, true); err != nil && !isStorageNotFound(err) {
		return fmt.Errorf("unmounting rootfs: %w", err)
	}
	if err := st.DeleteContainer(id); err != nil && !isStorageNotFound(err) {
		return fmt.Errorf("deleting storage container: %w", err)
	}
	return nil
}

func isStorageNotFound(err error) bool {
	return errors.Is(err, storage.ErrContainerUnknown) || errors.Is(err, storage.ErrNotAContainer) ||
		errors.Is(err, storage.ErrLayerUnknown)
}

// writeBundle generates the OCI spec and writes it to the bundle folder.
func (s *RuntimeServer) writeBundle(ctx context.Context, c *store.Container, pod *store.Pod, u *undo) error {
	in, err := s.specInput(c, pod)
	if err != nil {
		return err
	}
	u.push("releasing ID-mapped mounts", func(context.Context) error { return unstageIDMappedMounts(s.idmapDir(c.ID)) })
	if in.Config, err = s.stageIDMappedMounts(c.ID, in.Config, pod); err != nil {
		return err
	}
	img, err := s.Images.Status(ctx, c.ImageRef)
	if err == nil && img.Config != nil {
		in.Image = &img.Config.Config
	}
	sp, report, err := spec.GenerateWithReport(in)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "container config: %v", err)
	}
	if report.OOMScoreAdjClamped {
		s.oomClampOnce.Do(func() {
			Logger(ctx).Warn("Negative OOM score adjustments are clamped to 0: the daemon lacks CAP_SYS_RESOURCE",
				"requested", report.RequestedOOMScoreAdj)
		})
	}
	if err := s.injectCDIDevices(ctx, c.Config, c.ID, sp); err != nil {
		return err
	}
	c.StopSignal, c.User, c.CgroupPath = report.StopSignal, report.User.ToCRI(), sp.Linux.CgroupsPath
	c.Resources = c.Config.GetLinux().GetResources()
	if err := s.injectHooks(ctx, c.ID, sp, len(c.Config.GetMounts()) > 0); err != nil {
		return err
	}
	if err := s.nriCreate(ctx, c, pod, sp, u); err != nil {
		return err
	}
	return writeSpec(c.BundleDir, sp, u)
}

// injectHooks adds the OCI hooks whose conditions match sp, its
// annotations and whether the kubelet asked for bind mounts.
func (s *RuntimeServer) injectHooks(ctx context.Context, id string, sp *rspec.Spec, hasBindMounts bool) error {
	if s.Hooks == nil {
		return nil
	}
	applied, err := s.Hooks.Apply(sp, sp.Annotations, hasBindMounts)
	if err != nil {
		return fmt.Errorf("injecting OCI hooks: %w", err)
	}
	if len(applied) > 0 {
		Logger(ctx).Info("OCI hooks injected", "container_id", id, "hooks", applied)
	}
	return nil
}

// nriCreate asks NRI plugins for their adjustments to the container and
// applies them to sp, and their updates to other containers. A plugin's
// error fails the create; a later failure tells them it is gone.
func (s *RuntimeServer) nriCreate(ctx context.Context, c *store.Container, pod *store.Pod, sp *rspec.Spec, u *undo) error {
	if s.NRI == nil {
		return nil
	}
	np := nriPod(pod)
	resp, err := s.NRI.CreateContainer(ctx, np, nriContainer(c, sp))
	if err != nil {
		return fmt.Errorf("NRI plugin refused the container: %w", err)
	}
	u.push("telling NRI plugins the container is gone", func(ctx context.Context) error {
		gone := *c
		gone.State = runtimeapi.ContainerState_CONTAINER_EXITED
		_, err := s.NRI.StopContainer(ctx, np, nriContainer(&gone, nil))
		nriTold(ctx, "StopContainer", c.ID, err)
		nriTold(ctx, "RemoveContainer", c.ID, s.NRI.RemoveContainer(ctx, np, nriContainer(&gone, nil)))
		return nil
	})
	inject := func(sp *rspec.Spec, devices []string) error {
		if s.CDI == nil {
			return fmt.Errorf("NRI plugin asked for CDI devices %v, but CDI is not configured", devices)
		}
		return s.CDI.Inject(sp, devices)
	}
	if err := nri.Adjust(sp, resp.GetAdjust(), inject); err != nil {
		return status.Errorf(codes.InvalidArgument, "%v", err)
	}
	s.nriApplyUpdates(ctx, resp.GetUpdate())
	return nil
}

// specInput gathers what spec generation needs from the pod.
func (s *RuntimeServer) specInput(c *store.Container, pod *store.Pod) (spec.ContainerInput, error) {
	in := spec.ContainerInput{
		ID: c.ID, SandboxID: pod.ID, Config: c.Config, Sandbox: pod.Config, ImageName: c.ImageName,
		RootfsPath: c.Rootfs, Host: s.Host,
		Namespaces: spec.NamespacePaths{Network: pod.NS.Net, IPC: pod.NS.IPC, UTS: pod.NS.UTS, PID: pod.NS.PID, User: pod.NS.User},
		Files:      podFiles(pod),
	}
	in.Config = withPodNamespaces(c.Config, pod)
	nsOpts := in.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if nsOpts.GetPid() == runtimeapi.NamespaceMode_TARGET {
		target, err := s.Store.Containers.Lookup(nsOpts.GetTargetId())
		if err != nil {
			return in, invalid("config.linux.security_context.namespace_options.target_id", "%v", err)
		}
		t := target.Get()
		if t.State != runtimeapi.ContainerState_CONTAINER_RUNNING || t.Pid == 0 {
			return in, failedPrecondition("target container %s is not running", t.ID)
		}
		in.Namespaces.TargetPID = fmt.Sprintf("/proc/%d/ns/pid", t.Pid)
	}
	return in, nil
}

// createProcess has conmon create the container; it is not started yet.
func (s *RuntimeServer) createProcess(ctx context.Context, c *store.Container, pod *store.Pod, u *undo) error {
	if c.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(c.LogPath), 0o755); err != nil {
			return fmt.Errorf("creating log folder: %w", err)
		}
	}
	logFile := c.LogPath
	if logFile == "" {
		logFile = filepath.Join(c.BundleDir, "container.log")
	}
	pid, err := s.OCI.Create(ctx, oci.CreateOptions{
		ID: c.ID, Handler: c.Handler, BundleDir: c.BundleDir, LogPath: logFile,
		Terminal: c.Config.GetTty(), Stdin: c.Config.GetStdin(), StdinOnce: c.Config.GetStdinOnce(),
	})
	if err != nil {
		return err
	}
	c.Pid = pid
	u.push("deleting container process", func(ctx context.Context) error { return s.OCI.Delete(ctx, c.ID) })
	if s.NRI != nil {
		nriTold(ctx, "PostCreateContainer", c.ID, s.NRI.PostCreateContainer(ctx, nriPod(pod), nriContainer(c, nil)))
	}
	return nil
}

// withPodNamespaces returns cfg with the network and IPC modes of its
// pod, which a container always shares, and with a PID mode of CONTAINER
// when it asks for the pod's PID namespace but the pod keeps none (its own
// mode is CONTAINER), as containerd does.
func withPodNamespaces(cfg *runtimeapi.ContainerConfig, pod *store.Pod) *runtimeapi.ContainerConfig {
	out := proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	if out.Linux == nil {
		out.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	if out.Linux.SecurityContext == nil {
		out.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{}
	}
	if out.Linux.SecurityContext.NamespaceOptions == nil {
		out.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{}
	}
	ns := out.Linux.SecurityContext.NamespaceOptions
	podNS := pod.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	ns.Network, ns.Ipc, ns.UsernsOptions = podNS.GetNetwork(), podNS.GetIpc(), podNS.GetUsernsOptions()
	if ns.Pid == runtimeapi.NamespaceMode_POD && pod.NS.PID == "" {
		ns.Pid = runtimeapi.NamespaceMode_CONTAINER
	}
	return out
}

// reserveContainerName reserves the container's name; a container whose
// client gave up is claimed by an identical retry, or removed for a
// different request (see reservePodName).
func (s *RuntimeServer) reserveContainerName(ctx context.Context, c store.Container, req *runtimeapi.CreateContainerRequest) error {
	err := s.Store.Containers.ReserveName(c.Name, c.ID)
	if !errors.Is(err, store.ErrNameInUse) {
		return err
	}
	id, same, found := s.parking.claim("container/"+c.Name, req)
	switch {
	case !found:
		return err
	case same:
		Logger(ctx).Info("Retry claims the container its client gave up on", "container_id", id)
		return errRetried{id}
	}
	s.removeUnclaimedContainer(id)
	return s.Store.Containers.ReserveName(c.Name, c.ID)
}
