package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/network"
	"github.com/arbor-cri/arbor/sandbox"
	"github.com/arbor-cri/arbor/store"
)

// RunPodSandbox makes a ready pod: its cgroup parent, pinned namespaces,
// shared files and /dev/shm, its network, and an infra process only when
// the pod shares a PID namespace. Every step that makes something is
// undone if a later one fails.
func (s *RuntimeServer) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (resp *runtimeapi.RunPodSandboxResponse, err error) {
	cfg := req.GetConfig()
	if err := validatePodConfig(cfg); err != nil {
		return nil, err
	}
	h, err := s.OCI.Handler(req.GetRuntimeHandler())
	if err != nil {
		return nil, invalid("runtime_handler", "%v", err)
	}
	p := store.Pod{
		ID: newID(), Name: podName(cfg.GetMetadata()), Config: cfg, Handler: h.Name,
		CreatedAt: time.Now().UnixNano(), State: runtimeapi.PodSandboxState_SANDBOX_READY,
		PortMaps: cfg.GetPortMappings(),
	}
	p.Dir = s.podDir(p.ID)
	if err := validateUserNamespace(cfg); err != nil {
		return nil, err
	}
	if err := sandbox.ValidateSysctls(cfg.GetLinux().GetSysctls(), hostNetwork(&p), hostIPC(&p)); err != nil {
		return nil, invalid("config.linux.sysctls", "%v", err)
	}
	if err := s.reservePodName(ctx, p, req); err != nil {
		if id, ok := retriedPod(err); ok {
			return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
		}
		return nil, err
	}
	clientCtx := ctx
	ctx, cancel := detach(ctx)
	defer cancel()
	defer s.NRI.BlockSync()() // until the pod is listed
	u := &undo{log: Logger(ctx)}
	defer u.onFailure(&err)
	u.push("releasing name", func(context.Context) error { s.Store.Pods.ReleaseName(p.Name, p.ID); return nil })
	// The record goes first, marked as creating: a daemon that dies before
	// the end finds it at restore and undoes everything named by the ID.
	p.Phase = store.PhaseCreating
	if err := s.Store.SavePod(p); err != nil {
		return nil, err
	}
	u.push("deleting record", func(context.Context) error { return s.Store.DeletePod(p.ID) })

	on := func(f func(context.Context, *store.Pod, *undo) error) func(context.Context, *undo) error {
		return func(ctx context.Context, u *undo) error { return f(ctx, &p, u) }
	}
	if err := s.runSteps(ctx, "RunPodSandbox", u, []createStep{
		{"creating pod folder", on(s.makePodDir), ""},
		{"creating cgroup parent", on(s.makePodCgroups), ""},
		{"pinning namespaces", on(s.pinPodNamespaces), "RunPodSandbox.after-namespaces"},
		{"writing pod files", on(s.writePodFiles), ""},
		{"setting up network", on(s.setupPodNetwork), "RunPodSandbox.after-network"},
		{"starting infra container", on(s.startInfra), "RunPodSandbox.after-infra"},
		{"telling NRI plugins", on(s.nriRunPod), ""},
	}); err != nil {
		return nil, err
	}
	if err := s.point(ctx, "RunPodSandbox.before-state-write"); err != nil {
		return nil, err
	}
	p.Phase = store.PhaseReady
	if err := s.Store.SavePod(p); err != nil {
		return nil, err
	}
	// A client that gave up gets its pod parked as it is listed, so that
	// its retry finds it.
	gone := clientCtx.Err()
	if gone != nil {
		s.parkPod(ctx, p, req)
	} else {
		s.Store.Pods.Add(p.ID, p)
	}
	u.release()
	s.publishPod(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, p)
	s.publishPod(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, p)
	if gone != nil {
		return nil, gone
	}
	Logger(ctx).Info("Pod sandbox ready", "pod_sandbox_id", p.ID, "name", p.Name, "ips", p.IPs, "infra", p.InfraID != "")
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: p.ID}, nil
}

// nriRunPod tells NRI plugins about the pod; a plugin's error fails the
// pod, and then they are told it is gone.
func (s *RuntimeServer) nriRunPod(ctx context.Context, p *store.Pod, u *undo) error {
	if s.NRI == nil {
		return nil
	}
	if err := s.NRI.RunPodSandbox(ctx, nriPod(p)); err != nil {
		return fmt.Errorf("NRI plugin refused the pod: %w", err)
	}
	u.push("telling NRI plugins the pod is gone", func(ctx context.Context) error {
		nriTold(ctx, "StopPodSandbox", p.ID, s.NRI.StopPodSandbox(ctx, nriPod(p)))
		nriTold(ctx, "RemovePodSandbox", p.ID, s.NRI.RemovePodSandbox(ctx, nriPod(p)))
		return nil
	})
	return nil
}

func (s *RuntimeServer) makePodDir(_ context.Context, p *store.Pod, u *undo) error {
	if err := os.MkdirAll(p.Dir, 0o711); err != nil {
		return err
	}
	u.push("removing pod folder", func(context.Context) error { return os.RemoveAll(p.Dir) })
	return nil
}

// makePodCgroups creates the pod's cgroup parent and remembers the folders
// it created, so that removal takes exactly those away again.
func (s *RuntimeServer) makePodCgroups(_ context.Context, p *store.Pod, u *undo) error {
	parent := sandbox.CgroupParent(p.Config)
	if parent == "" {
		return nil
	}
	// Which folders this pod makes is not derivable from its ID: record
	// them before making them, so that a restore after a crash, even one
	// in the middle of the mkdirs, removes them; then record exactly the
	// ones this pod made.
	planned, err := sandbox.MissingCgroupFolders(parent)
	if err != nil {
		return err
	}
	if len(planned) > 0 {
		p.Cgroups = planned
		if err := s.Store.SavePod(*p); err != nil {
			return err
		}
	}
	created, err := sandbox.EnsureCgroupParent(parent)
	if err != nil {
		return err
	}
	p.Cgroups = created
	u.push("removing cgroups", func(context.Context) error { return sandbox.RemoveCgroups(created) })
	if len(created) == 0 && len(planned) == 0 {
		return nil
	}
	return s.Store.SavePod(*p)
}

func (s *RuntimeServer) pinPodNamespaces(ctx context.Context, p *store.Pod, u *undo) error {
	ns, err := sandbox.PinNamespaces(ctx, sandbox.Options{
		ID: p.ID, NsDir: filepath.Join(s.RunRoot, "ns"), HostNetwork: hostNetwork(p), HostIPC: hostIPC(p),
		Hostname: p.Config.GetHostname(), NewNetNS: s.Network.NewNetNS,
		UserNS: podUserNS(p.Config), AdoptNetNS: s.Network.AdoptNetNS,
	})
	if err != nil {
		return err
	}
	p.NS = store.Namespaces{Net: ns.Net, IPC: ns.IPC, UTS: ns.UTS, User: ns.User, Dir: ns.Dir}
	u.push("unpinning namespaces", func(context.Context) error { return s.unpinPod(p) })
	return sandbox.ApplySysctls(ns, p.Config.GetLinux().GetSysctls())
}

func (s *RuntimeServer) unpinPod(p *store.Pod) error {
	err := sandbox.UnpinNamespaces(sandbox.Namespaces{IPC: p.NS.IPC, UTS: p.NS.UTS, User: p.NS.User, Dir: p.NS.Dir})
	if nerr := s.Network.RemoveNetNS(p.NS.Net); err == nil {
		err = nerr
	}
	return err
}

func (s *RuntimeServer) writePodFiles(_ context.Context, p *store.Pod, u *undo) error {
	cfg := p.Config
	if err := sandbox.WriteResolvConf(filepath.Join(p.Dir, resolvConfFile), cfg.GetDnsConfig()); err != nil {
		return err
	}
	if err := sandbox.WriteHostname(filepath.Join(p.Dir, hostnameFile), podHostname(p)); err != nil {
		return err
	}
	if hostIPC(p) {
		return nil
	}
	shm := filepath.Join(p.Dir, shmDir)
	if err := sandbox.MountShm(shm, 0); err != nil {
		return err
	}
	u.push("unmounting shm", func(context.Context) error { return sandbox.UnmountShm(shm) })
	return nil
}

// podHostname is the pod's hostname: the configured one, or the node's when
// the pod uses the host network or names none (its UTS namespace then keeps
// the node's name too).
func podHostname(p *store.Pod) string {
	if h := p.Config.GetHostname(); h != "" && !hostNetwork(p) {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// setupPodNetwork attaches the pod to the CNI network (not for host
// network) and then writes its /etc/hosts with the pod's addresses.
func (s *RuntimeServer) setupPodNetwork(ctx context.Context, p *store.Pod, u *undo) error {
	if !hostNetwork(p) {
		res, err := s.Network.Setup(ctx, s.networkPod(p))
		if err != nil {
			return err
		}
		p.Network = true
		u.push("tearing down network", func(ctx context.Context) error { return s.Network.Teardown(ctx, s.networkPod(p)) })
		for _, ip := range res.IPs {
			p.IPs = append(p.IPs, ip.String())
		}
	}
	return sandbox.WriteHosts(filepath.Join(p.Dir, hostsFile), podHostname(p), p.IPs, hostNetwork(p))
}

func (s *RuntimeServer) networkPod(p *store.Pod) network.Pod {
	md := p.Config.GetMetadata()
	np := network.Pod{
		ID: p.ID, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(),
		NetNSPath: p.NS.Net, CgroupParent: sandbox.CgroupParent(p.Config),
	}
	for _, pm := range p.PortMaps {
		if pm.GetHostPort() <= 0 {
			continue
		}
		np.PortMappings = append(np.PortMappings, network.PortMapping{
			Protocol: strings.ToLower(pm.GetProtocol().String()), ContainerPort: pm.GetContainerPort(),
			HostPort: pm.GetHostPort(), HostIP: pm.GetHostIp(),
		})
	}
	return np
}

// errRetried carries the ID of a parked pod that an identical retry claims.
type errRetried struct{ id string }

func (e errRetried) Error() string { return "retry of a parked create" }

func retriedPod(err error) (string, bool) {
	r, ok := err.(errRetried)
	return r.id, ok
}

// reservePodName reserves the pod's name. If a pod whose client gave up
// holds it, an identical request claims that pod (errRetried), and a
// different one removes it first.
func (s *RuntimeServer) reservePodName(ctx context.Context, p store.Pod, req *runtimeapi.RunPodSandboxRequest) error {
	err := s.Store.Pods.ReserveName(p.Name, p.ID)
	if !errors.Is(err, store.ErrNameInUse) {
		return err
	}
	id, same, found := s.parking.claim("pod/"+p.Name, req)
	switch {
	case !found:
		return err
	case same:
		Logger(ctx).Info("Retry claims the pod its client gave up on", "pod_sandbox_id", id)
		return errRetried{id}
	}
	s.removeUnclaimedPod(id)
	return s.Store.Pods.ReserveName(p.Name, p.ID)
}
