package cri

import (
	"context"
	"iter"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/stats"
	"github.com/arbor-cri/arbor/store"
)

// PodSandboxStats reports a pod's usage: its cgroup parent's CPU, memory
// and process count (the sum of its containers' when it has no parent),
// its network namespace's interfaces, and each container's stats.
func (s *RuntimeServer) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	src, err := s.statsSource()
	if err != nil {
		return nil, err
	}
	e, err := s.Store.Pods.Lookup(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	p := e.Get()
	ps, err := s.readPod(ctx, src, &p)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: ps}, nil
}

// ListPodSandboxStats reports every pod matching the filter (ID by prefix,
// labels exactly); a pod whose counters cannot be read is logged and left
// out.
func (s *RuntimeServer) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	src, err := s.statsSource()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: slices.Collect(s.podStats(ctx, src, req.GetFilter()))}, nil
}

// podStats yields the stats ListPodSandboxStats and StreamPodSandboxStats
// report for f, reading several pods at once (readAhead); it stops early
// when ctx ends.
func (s *RuntimeServer) podStats(ctx context.Context, src StatsSource, f *runtimeapi.PodSandboxStatsFilter) iter.Seq[*runtimeapi.PodSandboxStats] {
	var matched []store.Pod
	for _, e := range s.Store.Pods.All() {
		p := e.Get()
		if strings.HasPrefix(p.ID, f.GetId()) && labelsMatch(p.Config.GetLabels(), f.GetLabelSelector()) {
			matched = append(matched, p)
		}
	}
	return readAhead(ctx, matched, func(p *store.Pod) (*runtimeapi.PodSandboxStats, bool) {
		ps, err := s.readPod(ctx, src, p)
		if err != nil {
			Logger(ctx).Warn("Cannot read pod sandbox stats", "pod_sandbox_id", p.ID, "error", err)
			return nil, false
		}
		return ps, true
	})
}

// readPod reads a pod and its containers and converts them.
func (s *RuntimeServer) readPod(ctx context.Context, src StatsSource, p *store.Pod) (*runtimeapi.PodSandboxStats, error) {
	t, ctrs := s.podTarget(p)
	ps, err := src.Pod(ctx, t)
	if err != nil {
		return nil, err
	}
	return podStatsToCRI(p, ctrs, &ps), nil
}

// podTarget names what to read for a pod: its cgroup parent, its network
// namespace (none for host-network pods) and its containers, whose records
// are returned in the same order.
func (s *RuntimeServer) podTarget(p *store.Pod) (stats.PodTarget, []store.Container) {
	t := stats.PodTarget{ID: p.ID, CgroupPath: p.Config.GetLinux().GetCgroupParent()}
	if !hostNetwork(p) {
		t.NetNS, t.Pid = p.NS.Net, p.InfraPid
	}
	var ctrs []store.Container
	for _, e := range s.Store.ContainersOf(p.ID) {
		c := e.Get()
		ctrs = append(ctrs, c)
		t.Containers = append(t.Containers, containerTarget(&c))
	}
	return t, ctrs
}

func podStatsToCRI(p *store.Pod, ctrs []store.Container, ps *stats.PodStats) *runtimeapi.PodSandboxStats {
	md := p.Config.GetMetadata()
	out := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: p.ID, Metadata: md, Labels: p.Config.GetLabels(), Annotations: p.Config.GetAnnotations(),
		},
		Linux: &runtimeapi.LinuxPodSandboxStats{},
	}
	lx := out.Linux
	if cg := ps.Cgroup; cg != nil {
		ts := cg.Timestamp.UnixNano()
		lx.Cpu, lx.Memory = cpuToCRI(cg, ps.NanoCores), memoryToCRI(cg)
		lx.Io = &runtimeapi.IoUsage{Timestamp: ts, Psi: psiToCRI(cg.IOPSI)}
		if cg.HasPids {
			lx.Process = &runtimeapi.ProcessUsage{Timestamp: ts, ProcessCount: u64(cg.Pids)}
		}
	}
	lx.Network = networkToCRI(ps.Network)
	for i := range ps.Containers {
		lx.Containers = append(lx.Containers, containerStatsToCRI(&ctrs[i], &ps.Containers[i]))
	}
	return out
}

// networkToCRI reports eth0 (or else the first interface) as the default
// and the others after it.
func networkToCRI(n *stats.Network) *runtimeapi.NetworkUsage {
	if n == nil {
		return nil
	}
	out := &runtimeapi.NetworkUsage{Timestamp: n.Timestamp.UnixNano()}
	def := -1
	for i, ifc := range n.Interfaces {
		if ifc.Name == stats.DefaultInterface {
			def = i
		}
	}
	if def < 0 && len(n.Interfaces) > 0 {
		def = 0
	}
	for i, ifc := range n.Interfaces {
		u := &runtimeapi.NetworkInterfaceUsage{
			Name: ifc.Name, RxBytes: u64(ifc.RxBytes), RxErrors: u64(ifc.RxErrors),
			TxBytes: u64(ifc.TxBytes), TxErrors: u64(ifc.TxErrors),
		}
		if i == def {
			out.DefaultInterface = u
		} else {
			out.Interfaces = append(out.Interfaces, u)
		}
	}
	return out
}
