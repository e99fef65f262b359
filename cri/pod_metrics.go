package cri

import (
	"context"
	"slices"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/stats"
	"github.com/arbor-cri/arbor/store"
)

// The label keys of every metric, sorted as the CRI requires; a metric
// with an extra label (interface, device) has it inserted in order.
var baseLabelKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

// ctrMetric is a cAdvisor-style metric read from a container's stats.
type ctrMetric struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      string // extra label key, "" for none
	// value returns the extra label's value, the metric's value, its
	// timestamp (0 when live) and whether it exists for this container.
	value func(c *store.Container, cs *stats.ContainerStats) (extra string, v uint64, ts int64, ok bool)
}

// cg wraps a cgroup counter: the metric exists while the cgroup does.
func cg(f func(*stats.Cgroup) uint64) func(*store.Container, *stats.ContainerStats) (string, uint64, int64, bool) {
	return func(_ *store.Container, cs *stats.ContainerStats) (string, uint64, int64, bool) {
		if cs.Cgroup == nil {
			return "", 0, 0, false
		}
		return "", f(cs.Cgroup), 0, true
	}
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// containerMetrics are reported per container. CPU times are whole
// seconds: CRI metric values are integers.
var containerMetrics = []ctrMetric{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.CPU.UsageNs / 1e9 })},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.CPU.UserNs / 1e9 })},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.CPU.SystemNs / 1e9 })},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Usage })},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.WorkingSet })},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.RSS })},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Cache })},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Swap })},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.MaxUsage })},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, "failure_type", memFaults},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.Limit })},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, "", cg(func(c *stats.Cgroup) uint64 { return c.Memory.OOMKills })},
	{"container_processes", "Number of processes running inside the container.", gauge, "", cg(func(c *stats.Cgroup) uint64 { return c.Pids })},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, "device", fsUsage},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, "", startTime},
}

// memFaults reports page faults as failure_type="pgfault"; the major
// ones are a second metric value under "pgmajfault" (see podMetrics).
func memFaults(_ *store.Container, cs *stats.ContainerStats) (string, uint64, int64, bool) {
	if cs.Cgroup == nil {
		return "", 0, 0, false
	}
	return "pgfault", cs.Cgroup.Memory.PageFaults, 0, true
}

func fsUsage(_ *store.Container, cs *stats.ContainerStats) (string, uint64, int64, bool) {
	if cs.Layer == nil {
		return "", 0, 0, false
	}
	return cs.Layer.Mountpoint, cs.Layer.Bytes, cs.Layer.Timestamp.UnixNano(), true
}

func startTime(c *store.Container, _ *stats.ContainerStats) (string, uint64, int64, bool) {
	if c.StartedAt == 0 {
		return "", 0, 0, false
	}
	return "", uint64(c.StartedAt / 1e9), 0, true
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
	out := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, e := range s.Store.Pods.All() {
		p := e.Get()
		t, ctrs := s.podTarget(&p)
		ps, err := src.Pod(ctx, t)
		if err != nil {
			Logger(ctx).Warn("Cannot read pod sandbox metrics", "pod_sandbox_id", p.ID, "error", err)
			continue
		}
		out.PodMetrics = append(out.PodMetrics, podMetrics(&p, ctrs, &ps))
	}
	return out, nil
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
	add := func(m *ctrMetric, extra string, v uint64, ts int64) {
		out.Metrics = append(out.Metrics, &runtimeapi.Metric{
			Name: m.name, MetricType: m.typ, Timestamp: ts, Value: u64(v), LabelValues: labelValues(base, m.extra, extra),
		})
	}
	for i := range containerMetrics {
		m := &containerMetrics[i]
		extra, v, ts, ok := m.value(c, cs)
		if !ok {
			continue
		}
		add(m, extra, v, ts)
		if m.extra == "failure_type" {
			add(m, "pgmajfault", cs.Cgroup.Memory.MajorFaults, 0)
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
