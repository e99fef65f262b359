package network

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/arbor-cri/arbor/internal/nsfile"
)

// attachment is one network a pod is (or may be) attached to.
type attachment struct {
	list *libcni.NetworkConfigList
	rt   *libcni.RuntimeConf
}

// Setup attaches the pod's network namespace to the loopback network ("lo")
// and the default network ("eth0") with CNI ADD, passing Kubernetes pod
// arguments and the port mapping, cgroup and bandwidth capabilities. On error
// everything added is removed again (CNI DEL under a fresh bounded context).
// A pod that is already attached is refused and left untouched.
func (m *Manager) Setup(ctx context.Context, pod Pod) (Result, error) {
	if err := pod.validate(); err != nil {
		return Result{}, err
	}
	if !nsfile.IsPinned(pod.NetNSPath) {
		return Result{}, fmt.Errorf("setting up pod network: %q is not a network namespace", pod.NetNSPath)
	}
	unlock := m.locks.lock(pod.ID)
	defer unlock()
	if cached := m.cachedAttachments(pod.ID, pod.NetNSPath); len(cached) > 0 {
		return Result{}, fmt.Errorf("setting up pod network: pod %s is already attached to %s", pod.ID, cached[0].list.Name)
	}
	def, err := m.defaultNetwork(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("loading default network: %w", err)
	}
	lo := attachment{m.loopback, pod.runtimeConf(pod.NetNSPath, loIfName)}
	eth := attachment{def.list, pod.runtimeConf(pod.NetNSPath, podIfName)}
	res, err := m.addAll(ctx, lo, eth)
	if err != nil {
		return Result{}, err
	}
	m.log.Info("Pod network set up", "pod_sandbox_id", pod.ID, "network", def.list.Name, "ips", res.IPs)
	return res, nil
}

// addAll adds each attachment in order and returns the last one's result;
// on any error it deletes all of them in reverse order.
func (m *Manager) addAll(ctx context.Context, atts ...attachment) (res Result, err error) {
	defer func() {
		if err != nil {
			m.rollback(ctx, atts)
		}
	}()
	for _, a := range atts {
		r, err := m.add(ctx, a)
		if err != nil {
			return Result{}, err
		}
		if a.rt.IfName != loIfName {
			if res, err = convertResult(r); err != nil {
				return Result{}, fmt.Errorf("network %s: %w", a.list.Name, err)
			}
		}
	}
	return res, nil
}

func (m *Manager) add(ctx context.Context, a attachment) (types.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PluginTimeout)
	defer cancel()
	r, err := m.cni.AddNetworkList(ctx, a.list, a.rt)
	if err != nil {
		return nil, fmt.Errorf("adding network %s to %s: %w", a.list.Name, a.rt.IfName, err)
	}
	return r, nil
}

// rollback deletes atts in reverse order under a fresh bounded context.
func (m *Manager) rollback(parent context.Context, atts []attachment) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), rollbackTimeout)
	defer cancel()
	for _, a := range slices.Backward(atts) {
		if err := m.del(ctx, a); err != nil {
			m.log.Error("Pod network rollback incomplete", "pod_sandbox_id", a.rt.ContainerID, "error", err)
		}
	}
}

func (m *Manager) del(ctx context.Context, a attachment) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PluginTimeout)
	defer cancel()
	if err := m.cni.DelNetworkList(ctx, a.list, a.rt); err != nil {
		return fmt.Errorf("deleting network %s from %s: %w", a.list.Name, a.rt.IfName, err)
	}
	return nil
}

// Teardown detaches the pod from every network it was attached to (CNI DEL),
// releasing IPAM leases and port mappings. It is idempotent. When the network
// namespace is gone, plugins get an empty netns path as the CNI spec allows.
// Attachments are replayed from libcni's cache; without a cache entry the
// current default network and the pod's own arguments are used.
func (m *Manager) Teardown(ctx context.Context, pod Pod) error {
	if err := pod.validate(); err != nil {
		return err
	}
	unlock := m.locks.lock(pod.ID)
	defer unlock()
	netns := ""
	if nsfile.IsPinned(pod.NetNSPath) {
		netns = pod.NetNSPath
	}
	var errs []error
	for _, a := range m.teardownAttachments(ctx, pod, netns) {
		errs = append(errs, m.del(ctx, a))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tearing down pod network: %w", err)
	}
	m.log.Info("Pod network torn down", "pod_sandbox_id", pod.ID)
	return nil
}

// teardownAttachments lists what to delete, pod interfaces before "lo".
func (m *Manager) teardownAttachments(ctx context.Context, pod Pod, netns string) []attachment {
	atts := m.cachedAttachments(pod.ID, netns)
	if len(atts) == 0 {
		atts = m.currentAttachments(ctx, pod, netns)
	}
	slices.SortStableFunc(atts, func(a, b attachment) int {
		return boolOrder(a.rt.IfName == loIfName) - boolOrder(b.rt.IfName == loIfName)
	})
	return atts
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cachedAttachments rebuilds the attachments libcni cached at ADD time.
func (m *Manager) cachedAttachments(id, netns string) []attachment {
	cached, err := m.cni.GetCachedAttachments(id)
	if err != nil {
		m.log.Warn("CNI cache unreadable", "pod_sandbox_id", id, "error", err)
		return nil
	}
	var atts []attachment
	for _, c := range cached {
		list, err := libcni.NetworkConfFromBytes(c.Config)
		if err != nil || len(list.Plugins) == 0 {
			m.log.Warn("CNI cache entry unusable", "pod_sandbox_id", id, "network", c.Network, "error", err)
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: c.IfName,
			Args: c.CniArgs, CapabilityArgs: c.CapabilityArgs}
		atts = append(atts, attachment{list, rt})
	}
	return atts
}

// currentAttachments are the default network and loopback built from pod.
func (m *Manager) currentAttachments(ctx context.Context, pod Pod, netns string) []attachment {
	atts := []attachment{{m.loopback, pod.runtimeConf(netns, loIfName)}}
	def, err := m.defaultNetwork(ctx)
	if err != nil {
		m.log.Warn("Pod network teardown without default network", "pod_sandbox_id", pod.ID, "error", err)
		return atts
	}
	return append(atts, attachment{def.list, pod.runtimeConf(netns, podIfName)})
}

// Status returns what the pod's default-network attachment was given, from
// libcni's cache (it survives restarts). It fails if the pod is not attached
// or its network namespace is gone. It runs no plugin; see Check.
func (m *Manager) Status(ctx context.Context, pod Pod) (Result, error) {
	a, err := m.podAttachment(pod)
	if err != nil {
		return Result{}, err
	}
	if !nsfile.IsPinned(pod.NetNSPath) {
		return Result{}, fmt.Errorf("pod %s network namespace %q is gone", pod.ID, pod.NetNSPath)
	}
	r, err := m.cni.GetNetworkListCachedResult(a.list, a.rt)
	if err != nil || r == nil {
		return Result{}, fmt.Errorf("reading cached result of network %s: %w", a.list.Name, err)
	}
	return convertResult(r)
}

// Check runs CNI CHECK for the pod's default-network attachment. Note that
// Debian's portmap 1.1.1 fails CHECK for IPv4-only pods with port mappings
// (it looks for its chain in ip6tables).
func (m *Manager) Check(ctx context.Context, pod Pod) error {
	a, err := m.podAttachment(pod)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PluginTimeout)
	defer cancel()
	if err := m.cni.CheckNetworkList(ctx, a.list, a.rt); err != nil {
		return fmt.Errorf("checking network %s: %w", a.list.Name, err)
	}
	return nil
}

// podAttachment returns the pod's cached non-loopback attachment.
func (m *Manager) podAttachment(pod Pod) (attachment, error) {
	if err := pod.validate(); err != nil {
		return attachment{}, err
	}
	unlock := m.locks.lock(pod.ID)
	defer unlock()
	for _, a := range m.cachedAttachments(pod.ID, pod.NetNSPath) {
		if a.rt.IfName != loIfName {
			return a, nil
		}
	}
	return attachment{}, fmt.Errorf("pod %s has no network attachment", pod.ID)
}
