package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultFsInterval   = 30 * time.Second
	DefaultMinCPUWindow = time.Second
)

// Options configure a Collector. Zero values take the defaults.
type Options struct {
	// Layout is where cgroups are read; zero means DetectLayout(DefaultRoot).
	Layout Layout
	// Layers finds writable layers; nil means no writable layer usage.
	Layers LayerFinder
	// FsInterval is how often cached writable layer usage is measured
	// again in the background. A layer not asked for during three
	// intervals is dropped from the cache.
	FsInterval time.Duration
	// MinCPUWindow is the shortest time between the two CPU samples a rate
	// is computed from; calls closer together report the last rate.
	MinCPUWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ContainerTarget names a container to read.
type ContainerTarget struct {
	ID         string
	CgroupPath string
}

// ContainerStats is one reading of a container.
type ContainerStats struct {
	ID string
	// Cgroup is nil when the container's cgroup does not exist (it is not
	// running).
	Cgroup *Cgroup
	// NanoCores is the CPU rate in core-nanoseconds per second over the
	// last sample window; nil until there are two samples.
	NanoCores *uint64
	// Layer is the writable layer's usage, nil when unknown.
	Layer *DiskUsage
}

// PodTarget names a pod to read.
type PodTarget struct {
	ID string
	// CgroupPath is the pod's cgroup parent; when empty the pod's usage is
	// the sum of its containers'.
	CgroupPath string
	// NetNS is the pinned network namespace; Pid a process in it, used
	// when NetNS is empty. Neither: no network stats (host network pods
	// report none).
	NetNS string
	Pid   int
	// Containers are read and reported inside the pod's stats.
	Containers []ContainerTarget
}

// PodStats is one reading of a pod.
type PodStats struct {
	ID         string
	Cgroup     *Cgroup
	NanoCores  *uint64
	Network    *Network
	Containers []ContainerStats
}

// Collector reads container and pod stats on demand and keeps what is
// expensive or needs history: writable layer usage (measured in the
// background by Serve) and the previous CPU sample of each container and
// pod. It is safe for concurrent use.
type Collector struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	cpu    map[string]cpuSample   // guarded by mu; "c/<id>" or "p/<id>"
	layers map[string]*layerEntry // guarded by mu; by container ID
}

type cpuSample struct {
	usage   uint64
	at      time.Time
	rate    uint64
	hasRate bool
}

type layerEntry struct {
	usage *DiskUsage
	asked time.Time
}

// NewCollector returns a collector; Serve keeps its layer cache fresh.
func NewCollector(opts Options, log *slog.Logger) *Collector {
	if opts.Layout.Root == "" {
		opts.Layout = DetectLayout(DefaultRoot)
	}
	if opts.FsInterval <= 0 {
		opts.FsInterval = DefaultFsInterval
	}
	if opts.MinCPUWindow <= 0 {
		opts.MinCPUWindow = DefaultMinCPUWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Collector{opts: opts, log: log, cpu: map[string]cpuSample{}, layers: map[string]*layerEntry{}}
}

// String names the service in the supervisor tree.
func (c *Collector) String() string { return "stats" }

// Container reads one container. A missing cgroup is not an error: the
// result then has no Cgroup.
func (c *Collector) Container(ctx context.Context, t ContainerTarget) (ContainerStats, error) {
	out := ContainerStats{ID: t.ID}
	cg, err := c.readCgroup(t.CgroupPath)
	if err != nil {
		return out, fmt.Errorf("container %s: %w", t.ID, err)
	}
	if cg != nil {
		out.Cgroup, out.NanoCores = cg, c.rate("c/"+t.ID, cg)
	}
	out.Layer = c.layer(ctx, t.ID)
	return out, nil
}

// Pod reads a pod, its network and its containers.
func (c *Collector) Pod(ctx context.Context, t PodTarget) (PodStats, error) {
	out := PodStats{ID: t.ID}
	for _, ct := range t.Containers {
		cs, err := c.Container(ctx, ct)
		if err != nil {
			return out, fmt.Errorf("pod %s: %w", t.ID, err)
		}
		out.Containers = append(out.Containers, cs)
	}
	cg, err := c.podCgroup(t, out.Containers)
	if err != nil {
		return out, fmt.Errorf("pod %s: %w", t.ID, err)
	}
	if cg != nil {
		out.Cgroup, out.NanoCores = cg, c.rate("p/"+t.ID, cg)
	}
	out.Network = c.network(t)
	return out, nil
}

// Forget drops what the collector keeps about a container or pod ID; call
// it when the object is removed.
func (c *Collector) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cpu, "c/"+id)
	delete(c.cpu, "p/"+id)
	delete(c.layers, id)
}

// readCgroup reads a cgroup stamped with the collector's clock; nil when
// it does not exist or no path is given.
func (c *Collector) readCgroup(path string) (*Cgroup, error) {
	if path == "" {
		return nil, nil
	}
	cg, err := c.opts.Layout.Read(path)
	if errors.Is(err, ErrNoCgroup) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cg.Timestamp = c.opts.Now()
	return &cg, nil
}

// podCgroup reads the pod's cgroup parent, or sums its containers'.
func (c *Collector) podCgroup(t PodTarget, ctrs []ContainerStats) (*Cgroup, error) {
	if t.CgroupPath != "" {
		return c.readCgroup(t.CgroupPath)
	}
	var sum *Cgroup
	for _, cs := range ctrs {
		if cs.Cgroup == nil {
			continue
		}
		if sum == nil {
			sum = &Cgroup{Timestamp: cs.Cgroup.Timestamp}
		}
		addCgroup(sum, cs.Cgroup)
	}
	return sum, nil
}

// network reads the pod's interfaces; a failure is logged and reported
// as no network stats (the pod may be stopping).
func (c *Collector) network(t PodTarget) *Network {
	var n Network
	var err error
	switch {
	case t.NetNS != "":
		n, err = ReadNetworkOfNetns(t.NetNS)
	case t.Pid > 0:
		n, err = ReadNetworkOfPid(t.Pid)
	default:
		return nil
	}
	if err != nil {
		c.log.Debug("Cannot read pod network stats", "pod_sandbox_id", t.ID, "error", err)
		return nil
	}
	n.Timestamp = c.opts.Now()
	return &n
}

// addCgroup adds b's counters into a (PSI, limits, block I/O and open
// files are not summed).
func addCgroup(a, b *Cgroup) {
	a.CPU.UsageNs += b.CPU.UsageNs
	a.CPU.UserNs += b.CPU.UserNs
	a.CPU.SystemNs += b.CPU.SystemNs
	m, n := &a.Memory, &b.Memory
	m.Usage, m.WorkingSet, m.RSS, m.Cache = m.Usage+n.Usage, m.WorkingSet+n.WorkingSet, m.RSS+n.RSS, m.Cache+n.Cache
	m.Swap, m.PageFaults, m.MajorFaults = m.Swap+n.Swap, m.PageFaults+n.PageFaults, m.MajorFaults+n.MajorFaults
	m.OOMKills, m.Failcnt = m.OOMKills+n.OOMKills, m.Failcnt+n.Failcnt
	m.KernelUsage, m.MappedFile = m.KernelUsage+n.KernelUsage, m.MappedFile+n.MappedFile
	a.Pids, a.HasPids = a.Pids+b.Pids, a.HasPids || b.HasPids
}
