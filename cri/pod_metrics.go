package cri

import (
	"context"
	"iter"
	"slices"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/stats"
	"github.com/arbor-cri/arbor/store"
)

// The label keys of every metric, sorted as the CRI requires; a metric
// with an extra label (interface, device) has it inserted in order.
var baseLabelKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

// ctrMetric is a cAdvisor-style metric read from a container's stats and
// record.
type ctrMetric struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      string // extra label key, "" for none
	// values returns the metric's samples for a container: none when it
	// does not exist for it, one per extra label value otherwise.
	values valuesFunc
}

// sample is one value of a metric: the extra label's value ("" without
// one), the value and its timestamp (0 when live).
type sample struct {
	extra string
	v     uint64
	ts    int64
}

// valuesFunc reads a metric's samples from a container's record and stats.
type valuesFunc = func(*store.Container, *stats.ContainerStats) []sample

// cg wraps a cgroup counter: the metric exists while the cgroup does.
func cg(f func(*stats.Cgroup) uint64) valuesFunc {
	return cgIf(func(*stats.Cgroup) bool { return true }, f)
}

// cgIf is cg for a counter the kernel may not offer: the metric exists
// while the cgroup does and has says the counter was read.
func cgIf(has func(*stats.Cgroup) bool, f func(*stats.Cgroup) uint64) valuesFunc {
	return func(_ *store.Container, cs *stats.ContainerStats) []sample {
		if cs.Cgroup == nil || !has(cs.Cgroup) {
			return nil
		}
		return []sample{{v: f(cs.Cgroup)}}
	}
}

func hasCFS(c *stats.Cgroup) bool   { return c.CPU.HasCFS }
func hasPids(c *stats.Cgroup) bool  { return c.HasPids }
func hasFiles(c *stats.Cgroup) bool { return c.Files != nil }

// perDevice reports a block I/O counter per device, the device label
// naming the device node.
func perDevice(f func(*stats.DeviceIO) uint64) valuesFunc {
	return func(_ *store.Container, cs *stats.ContainerStats) []sample {
		if cs.Cgroup == nil {
			return nil
		}
		out := make([]sample, 0, len(cs.Cgroup.IO))
		for i := range cs.Cgroup.IO {
			d := &cs.Cgroup.IO[i]
			out = append(out, sample{extra: d.Device, v: f(d)})
		}
		return out
	}
}

// layerFS reports a reading of the writable layer and its file system,
// the device label naming the file system as fsUsage does.
func layerFS(f func(*stats.DiskUsage) uint64) valuesFunc {
	return func(_ *store.Container, cs *stats.ContainerStats) []sample {
		if cs.Layer == nil {
			return nil
		}
		return []sample{{extra: cs.Layer.Mountpoint, v: f(cs.Layer), ts: cs.Layer.Timestamp.UnixNano()}}
	}
}

// recorded reports a field of the container's recorded resources (as the
// kubelet last set them) when it is set.
func recorded(f func(*runtimeapi.LinuxContainerResources) int64) valuesFunc {
	return func(c *store.Container, _ *stats.ContainerStats) []sample {
		if c.Resources == nil {
			return nil
		}
		v := f(c.Resources)
		if v <= 0 {
			return nil
		}
		return []sample{{v: uint64(v)}}
	}
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// containerMetrics are reported per container. CPU times are whole
// seconds: CRI metric values are integers. Limits are 0 when there is
// none.
var containerMetrics = []ctrMetric{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.CPU.UsageNs / 1e9 })},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.CPU.UserNs / 1e9 })},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.CPU.SystemNs / 1e9 })},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, "", cgIf(hasCFS, func(c *stats.Cgroup) uint64 { return c.CPU.CFS.Periods })},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, "", cgIf(hasCFS, func(c *stats.Cgroup) uint64 { return c.CPU.CFS.ThrottledPeriods })},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, "", cgIf(hasCFS, func(c *stats.Cgroup) uint64 { return c.CPU.CFS.ThrottledNs / 1e9 })},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Usage })},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.WorkingSet })},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.RSS })},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Cache })},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.MappedFile })},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.KernelUsage })},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Swap })},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.MaxUsage })},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Failcnt })},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, "failure_type", memFaults},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Limit })},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", gauge, "", swapLimit},
	{"container_spec_cpu_period", "CPU period of the container.", gauge, "", recorded((*runtimeapi.LinuxContainerResources).GetCpuPeriod)},
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, "", recorded((*runtimeapi.LinuxContainerResources).GetCpuShares)},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.OOMKills })},
	{"container_processes", "Number of processes running inside the container.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Pids })},
	{"container_threads", "Number of threads running inside the container.", gauge, "", cgIf(hasPids, func(c *stats.Cgroup) uint64 { return c.Pids })},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", gauge, "", cgIf(hasPids, func(c *stats.Cgroup) uint64 { return c.PidsMax })},
	{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, "", cgIf(hasFiles, func(c *stats.Cgroup) uint64 { return c.Files.Descriptors })},
	{"container_sockets", "Number of open sockets for the container.", gauge, "", cgIf(hasFiles, func(c *stats.Cgroup) uint64 { return c.Files.Sockets })},
	{"container_blkio_device_usage_total", "Blkio device bytes usage (read and written).", counter, "device", perDevice(func(d *stats.DeviceIO) uint64 { return d.ReadBytes + d.WriteBytes })},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, "device", perDevice(func(d *stats.DeviceIO) uint64 { return d.ReadBytes })},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, "device", perDevice(func(d *stats.DeviceIO) uint64 { return d.Reads })},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, "device", perDevice(func(d *stats.DeviceIO) uint64 { return d.WriteBytes })},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, "device", perDevice(func(d *stats.DeviceIO) uint64 { return d.Writes })},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, "device", layerFS(func(u *stats.DiskUsage) uint64 { return u.Bytes })},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, "device", layerFS(func(u *stats.DiskUsage) uint64 { return u.Capacity })},
	{"container_fs_inodes_total", "Number of Inodes.", gauge, "device", layerFS(func(u *stats.DiskUsage) uint64 { return u.InodesTotal })},
	{"container_fs_inodes_free", "Number of available Inodes.", gauge, "device", layerFS(func(u *stats.DiskUsage) uint64 { return u.InodesFree })},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, "", startTime},
	{"container_last_seen", "Last time a container was seen by the exporter.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return uint64(c.Timestamp.Unix()) })},
}

// memFaults reports page faults as failure_type="pgfault" and the major
// ones as "pgmajfault".
func memFaults(_ *store.Container, cs *stats.ContainerStats) []sample {
	if cs.Cgroup == nil {
		return nil
	}
	m := &cs.Cgroup.Memory
	return []sample{{extra: "pgfault", v: m.PageFaults}, {extra: "pgmajfault", v: m.MajorFaults}}
}

// swapLimit is the recorded memory+swap limit, 0 when none was set.
func swapLimit(c *store.Container, _ *stats.ContainerStats) []sample {
	if c.Resources == nil {
		return nil
	}
	return []sample{{v: uint64(max(c.Resources.GetMemorySwapLimitInBytes(), 0))}}
}

func startTime(c *store.Container, _ *stats.ContainerStats) []sample {
	if c.StartedAt == 0 {
		return nil
	}
	return []sample{{v: uint64(c.StartedAt / 1e9)}}
}

// netMetric is a pod-level network metric of one interface.
type netMetric struct {
	name, help string
	value      func(*stats.Interface) uint64
}

var networkMetrics = []netMetric{
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", func(i *stats.Interface) uint64 { return i.RxBytes }},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", func(i *stats.Interface) uint64 { return i.RxPackets }},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", func(i *stats.Interface) uint64 { return i.RxErrors }},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", func(i *stats.Interface) uint64 { return i.RxDropped }},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", func(i *stats.Interface) uint64 { return i.TxBytes }},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", func(i *stats.Interface) uint64 { return i.TxPackets }},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", func(i *stats.Interface) uint64 { return i.TxErrors }},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", func(i *stats.Interface) uint64 { return i.TxDropped }},
}

// ListMetricDescriptors describes every metric ListPodSandboxMetrics
// returns.
func (s *RuntimeServer) ListMetricDescriptors(ctx context.Context, _ *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	out := &runtimeapi.ListMetricDescriptorsResponse{}
	for _, m := range containerMetrics {
		out.Descriptors = append(out.Descriptors, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: labelKeys(m.extra)})
	}
	for _, m := range networkMetrics {
		out.Descriptors = append(out.Descriptors, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: labelKeys("interface")})
	}
	return out, nil
}

// ListPodSandboxMetrics returns the metrics of every pod: network metrics
// per interface at pod level, the others per container.
func (s *RuntimeServer) ListPodSandboxMetrics(ctx context.Context, _ *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	src, err := s.statsSource()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: slices.Collect(s.allPodMetrics(ctx, src))}, nil
}

// allPodMetrics yields the metrics ListPodSandboxMetrics and
// StreamPodSandboxMetrics report, reading several pods at once
// (readAhead); it stops early when ctx ends.
func (s *RuntimeServer) allPodMetrics(ctx context.Context, src StatsSource) iter.Seq[*runtimeapi.PodSandboxMetrics] {
	var pods []store.Pod
	for _, e := range s.Store.Pods.All() {
		pods = append(pods, e.Get())
	}
	return readAhead(ctx, pods, func(p *store.Pod) (*runtimeapi.PodSandboxMetrics, bool) {
		t, ctrs := s.podTarget(p)
		ps, err := src.Pod(ctx, t)
		if err != nil {
			Logger(ctx).Warn("Cannot read pod sandbox metrics", "pod_sandbox_id", p.ID, "error", err)
			return nil, false
		}
		return podMetrics(p, ctrs, &ps), true
	})
}

func podMetrics(p *store.Pod, ctrs []store.Container, ps *stats.PodStats) *runtimeapi.PodSandboxMetrics {
	md := p.Config.GetMetadata()
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: p.ID}
	if ps.Network != nil {
		id := p.Config.GetLinux().GetCgroupParent()
		if id == "" {
			id = p.ID
		}
		base := []string{"", id, "", p.Name, md.GetNamespace(), md.GetName()}
		for i := range ps.Network.Interfaces {
			ifc := &ps.Network.Interfaces[i]
			for _, m := range networkMetrics {
				out.Metrics = append(out.Metrics, &runtimeapi.Metric{
					Name: m.name, MetricType: counter, Value: u64(m.value(ifc)),
					LabelValues: labelValues(base, "interface", ifc.Name),
				})
			}
		}
	}
	for i := range ps.Containers {
		out.ContainerMetrics = append(out.ContainerMetrics, containerMetricValues(p, &ctrs[i], &ps.Containers[i]))
	}
	return out
}

func containerMetricValues(p *store.Pod, c *store.Container, cs *stats.ContainerStats) *runtimeapi.ContainerMetrics {
	md := p.Config.GetMetadata()
	id := c.CgroupPath
	if id == "" {
		id = c.ID
	}
	base := []string{c.Config.GetMetadata().GetName(), id, c.ImageName, c.Name, md.GetNamespace(), md.GetName()}
	out := &runtimeapi.ContainerMetrics{ContainerId: c.ID}
	for i := range containerMetrics {
		m := &containerMetrics[i]
		for _, s := range m.values(c, cs) {
			out.Metrics = append(out.Metrics, &runtimeapi.Metric{
				Name: m.name, MetricType: m.typ, Timestamp: s.ts, Value: u64(s.v), LabelValues: labelValues(base, m.extra, s.extra),
			})
		}
	}
	return out
}

// labelKeys is the base keys with extra inserted in sorted position.
func labelKeys(extra string) []string {
	return labelValues(baseLabelKeys, extra, extra)
}

// labelValues inserts value into base where key sorts among the base keys.
func labelValues(base []string, key, value string) []string {
	out := slices.Clone(base)
	if key == "" {
		return out
	}
	at := len(baseLabelKeys)
	for i, k := range baseLabelKeys {
		if key < k {
			at = i
			break
		}
	}
	return slices.Insert(out, at, value)
}
