package cri

import (
	"context"
	"iter"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/stats"
	"github.com/arbor-cri/arbor/store"
)

// StatsSource reads container and pod usage; *stats.Collector implements
// it. A container or pod whose cgroup is gone reads without error and
// without counters.
type StatsSource interface {
	Container(ctx context.Context, t stats.ContainerTarget) (stats.ContainerStats, error)
	Pod(ctx context.Context, t stats.PodTarget) (stats.PodStats, error)
}

// ContainerStats reports one container's CPU, memory and writable layer
// usage. A container that is not running has attributes and writable
// layer only.
func (s *RuntimeServer) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	src, err := s.statsSource()
	if err != nil {
		return nil, err
	}
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	c := e.Get()
	cs, err := src.Container(ctx, containerTarget(&c))
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: containerStatsToCRI(&c, &cs)}, nil
}

// ListContainerStats reports every container matching the filter (ID and
// pod ID by prefix, labels exactly). A container whose counters cannot be
// read is logged and left out, so one bad cgroup never hides the rest.
func (s *RuntimeServer) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	src, err := s.statsSource()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: slices.Collect(s.containerStats(ctx, src, req.GetFilter()))}, nil
}

// containerStats yields the stats ListContainerStats and
// StreamContainerStats report for f, reading several containers at once
// (readAhead); it stops early when ctx ends.
func (s *RuntimeServer) containerStats(ctx context.Context, src StatsSource, f *runtimeapi.ContainerStatsFilter) iter.Seq[*runtimeapi.ContainerStats] {
	var matched []store.Container
	for _, e := range s.Store.Containers.All() {
		c := e.Get()
		if strings.HasPrefix(c.ID, f.GetId()) && strings.HasPrefix(c.PodID, f.GetPodSandboxId()) &&
			labelsMatch(c.Config.GetLabels(), f.GetLabelSelector()) {
			matched = append(matched, c)
		}
	}
	return readAhead(ctx, matched, func(c *store.Container) (*runtimeapi.ContainerStats, bool) {
		if err := s.point(ctx, "ContainerStats.read"); err != nil {
			return nil, false
		}
		cs, err := src.Container(ctx, containerTarget(c))
		if err != nil {
			Logger(ctx).Warn("Cannot read container stats", "container_id", c.ID, "error", err)
			return nil, false
		}
		return containerStatsToCRI(c, &cs), true
	})
}

// statsSource is the configured collector, or Unavailable.
func (s *RuntimeServer) statsSource() (StatsSource, error) {
	if s.Stats == nil {
		return nil, status.Error(codes.Unavailable, "the stats collector is not running")
	}
	return s.Stats, nil
}

func containerTarget(c *store.Container) stats.ContainerTarget {
	return stats.ContainerTarget{ID: c.ID, CgroupPath: c.CgroupPath}
}

func containerStatsToCRI(c *store.Container, cs *stats.ContainerStats) *runtimeapi.ContainerStats {
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: c.ID, Metadata: c.Config.GetMetadata(),
		Labels: c.Config.GetLabels(), Annotations: c.Config.GetAnnotations(),
	}}
	if cg := cs.Cgroup; cg != nil {
		ts := cg.Timestamp.UnixNano()
		out.Cpu = cpuToCRI(cg, cs.NanoCores)
		out.Memory = memoryToCRI(cg)
		out.Swap = &runtimeapi.SwapUsage{Timestamp: ts, SwapUsageBytes: u64(cg.Memory.Swap)}
		out.Io = &runtimeapi.IoUsage{Timestamp: ts, Psi: psiToCRI(cg.IOPSI)}
	}
	if l := cs.Layer; l != nil {
		out.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp: l.Timestamp.UnixNano(), FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: l.Mountpoint},
			UsedBytes: u64(l.Bytes), InodesUsed: u64(l.Inodes),
		}
	}
	return out
}

func cpuToCRI(cg *stats.Cgroup, nanoCores *uint64) *runtimeapi.CpuUsage {
	cpu := &runtimeapi.CpuUsage{
		Timestamp:            cg.Timestamp.UnixNano(),
		UsageCoreNanoSeconds: u64(cg.CPU.UsageNs),
		Psi:                  psiToCRI(cg.CPU.PSI),
	}
	if nanoCores != nil {
		cpu.UsageNanoCores = u64(*nanoCores)
	}
	return cpu
}

// memoryToCRI converts memory counters; available bytes is the limit less
// the working set, and absent without a limit.
func memoryToCRI(cg *stats.Cgroup) *runtimeapi.MemoryUsage {
	m := cg.Memory
	out := &runtimeapi.MemoryUsage{
		Timestamp:       cg.Timestamp.UnixNano(),
		WorkingSetBytes: u64(m.WorkingSet), UsageBytes: u64(m.Usage), RssBytes: u64(m.RSS),
		PageFaults: u64(m.PageFaults), MajorPageFaults: u64(m.MajorFaults),
		Psi: psiToCRI(m.PSI),
	}
	if m.Limit > 0 {
		avail := uint64(0)
		if m.Limit > m.WorkingSet {
			avail = m.Limit - m.WorkingSet
		}
		out.AvailableBytes = u64(avail)
	}
	return out
}

func psiToCRI(p *stats.PSI) *runtimeapi.PsiStats {
	if p == nil {
		return nil
	}
	conv := func(d stats.PSIData) *runtimeapi.PsiData {
		return &runtimeapi.PsiData{Total: d.Total, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &runtimeapi.PsiStats{Some: conv(p.Some), Full: conv(p.Full)}
}

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
