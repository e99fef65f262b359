package cri

import (
	"context"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cadvisorMetrics are the container metrics critest (cri-tools v1.37)
// expects in ListMetricDescriptors, less those it lists as unimplemented
// (hugetlb, pressure, spec_cpu_quota, memory reservation, ulimits).
var cadvisorMetrics = []string{
	"container_blkio_device_usage_total", "container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
	"container_cpu_cfs_throttled_seconds_total", "container_cpu_system_seconds_total", "container_cpu_usage_seconds_total",
	"container_cpu_user_seconds_total", "container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total",
	"container_fs_limit_bytes", "container_fs_reads_bytes_total", "container_fs_reads_total", "container_fs_usage_bytes",
	"container_fs_writes_bytes_total", "container_fs_writes_total", "container_last_seen", "container_memory_cache",
	"container_memory_failcnt", "container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
	"container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap", "container_memory_usage_bytes",
	"container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_network_receive_errors_total",
	"container_network_receive_packets_dropped_total", "container_network_receive_packets_total",
	"container_network_transmit_bytes_total", "container_network_transmit_errors_total",
	"container_network_transmit_packets_dropped_total", "container_network_transmit_packets_total", "container_oom_events_total",
	"container_processes", "container_sockets", "container_spec_cpu_period", "container_spec_cpu_shares",
	"container_spec_memory_limit_bytes", "container_spec_memory_swap_limit_bytes", "container_start_time_seconds",
	"container_threads", "container_threads_max",
}

// metricSet is one pod's metrics by name, then by the label values
// joined with "|".
type metricSet map[string]map[string]*runtimeapi.Metric

func podMetricSet(pm *runtimeapi.PodSandboxMetrics) metricSet {
	out := metricSet{}
	add := func(m *runtimeapi.Metric) {
		if out[m.GetName()] == nil {
			out[m.GetName()] = map[string]*runtimeapi.Metric{}
		}
		out[m.GetName()][strings.Join(m.GetLabelValues(), "|")] = m
	}
	for _, m := range pm.GetMetrics() {
		add(m)
	}
	for _, cm := range pm.GetContainerMetrics() {
		for _, m := range cm.GetMetrics() {
			add(m)
		}
	}
	return out
}

// TestMetricsAsCritestChecks runs critest's two metric checks: every
// expected descriptor exists with help and label keys, and a pod with a
// running container has every described metric, with as many label
// values as its descriptor has keys.
func TestMetricsAsCritestChecks(t *testing.T) {
	s := observeServer(t, &fakeStats{})
	ctx := context.Background()
	desc, err := s.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range desc.GetDescriptors() {
		if d.GetHelp() == "" || len(d.GetLabelKeys()) == 0 || !slices.IsSorted(d.GetLabelKeys()) {
			t.Errorf("descriptor %s: help %q, label keys %v", d.GetName(), d.GetHelp(), d.GetLabelKeys())
		}
		if _, dup := keys[d.GetName()]; dup {
			t.Errorf("descriptor %s listed twice", d.GetName())
		}
		keys[d.GetName()] = d.GetLabelKeys()
	}
	for _, name := range cadvisorMetrics {
		if keys[name] == nil {
			t.Errorf("descriptor %s missing", name)
		}
	}
	resp, err := s.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(resp.GetPodMetrics(), func(pm *runtimeapi.PodSandboxMetrics) bool { return pm.GetPodSandboxId() == "pod-a" })
	if i < 0 {
		t.Fatal("no metrics for pod-a")
	}
	got := podMetricSet(resp.GetPodMetrics()[i])
	for name, k := range keys {
		if len(got[name]) == 0 {
			t.Errorf("metric %s described but not listed for pod-a", name)
		}
		for _, m := range got[name] {
			if len(m.GetLabelValues()) != len(k) {
				t.Errorf("metric %s has label values %v for keys %v", name, m.GetLabelValues(), k)
			}
		}
	}
	for name := range got {
		if keys[name] == nil {
			t.Errorf("metric %s listed but not described", name)
		}
	}
}

// TestContainerMetricValues checks the value and labels of each metric
// of a container with every counter, and which metrics a container
// without CFS, open file counts or recorded resources leaves out.
func TestContainerMetricValues(t *testing.T) {
	s := observeServer(t, &fakeStats{})
	resp, err := s.ListPodSandboxMetrics(context.Background(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	all := metricSet{}
	for _, pm := range resp.GetPodMetrics() {
		for name, byLabels := range podMetricSet(pm) {
			if all[name] == nil {
				all[name] = map[string]*runtimeapi.Metric{}
			}
			for l, m := range byLabels {
				all[name][l] = m
			}
		}
	}
	const a1 = "web|/kubepods/poda/arbor-ctr-a1|busybox:latest|k8s_web|ns|a"
	const a1Device = "web|%s|/kubepods/poda/arbor-ctr-a1|busybox:latest|k8s_web|ns|a" // device sorts between container and id
	dev := func(d string) string { return strings.Replace(a1Device, "%s", d, 1) }
	const store = "/var/lib/arbor/storage"
	cases := []struct {
		name, labels string
		want         uint64
		typ          runtimeapi.MetricType
	}{
		{"container_cpu_cfs_periods_total", a1, 40, counter},
		{"container_cpu_cfs_throttled_periods_total", a1, 6, counter},
		{"container_cpu_cfs_throttled_seconds_total", a1, 2, counter},
		{"container_memory_failcnt", a1, 9, counter},
		{"container_memory_kernel_usage", a1, 400_000, gauge},
		{"container_memory_mapped_file", a1, 1_200_000, gauge},
		{"container_memory_failures_total", "web|pgmajfault|/kubepods/poda/arbor-ctr-a1|busybox:latest|k8s_web|ns|a", 1, counter},
		{"container_threads", a1, 2, gauge},
		{"container_threads_max", a1, 4096, gauge},
		{"container_file_descriptors", a1, 5, gauge},
		{"container_sockets", a1, 3, gauge},
		{"container_spec_cpu_period", a1, 100000, gauge},
		{"container_spec_cpu_shares", a1, 1024, gauge},
		{"container_spec_memory_swap_limit_bytes", a1, 64 << 20, gauge},
		{"container_last_seen", a1, uint64(statsAt.Unix()), gauge},
		{"container_blkio_device_usage_total", dev("/dev/vda"), 12288, counter},
		{"container_blkio_device_usage_total", dev("7:1"), 512, counter},
		{"container_fs_reads_bytes_total", dev("/dev/vda"), 8192, counter},
		{"container_fs_reads_total", dev("/dev/vda"), 2, counter},
		{"container_fs_writes_bytes_total", dev("/dev/vda"), 4096, counter},
		{"container_fs_writes_total", dev("/dev/vda"), 1, counter},
		{"container_fs_writes_total", dev("7:1"), 0, counter},
		{"container_fs_limit_bytes", dev(store), 1 << 30, gauge},
		{"container_fs_inodes_total", dev(store), 65536, gauge},
		{"container_fs_inodes_free", dev(store), 60000, gauge},
		{"container_fs_usage_bytes", dev(store), 4096, gauge},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.labels, func(t *testing.T) {
			m := all[tc.name][tc.labels]
			if m == nil {
				t.Fatalf("no sample with labels %s among %v", tc.labels, keysOf(all[tc.name]))
			}
			if m.GetValue().GetValue() != tc.want || m.GetMetricType() != tc.typ {
				t.Fatalf("got %v (%v), want %d (%v)", m.GetValue().GetValue(), m.GetMetricType(), tc.want, tc.typ)
			}
		})
	}
	if n := len(all["container_fs_reads_total"]); n != 2 {
		t.Errorf("container_fs_reads_total has %d samples, want one per device", n)
	}
	// ctr-b1 runs without CFS, pids.max or open file counts and has no
	// recorded resources: those metrics are left out, not reported as 0.
	const b1 = "db|/arbor-ctr-b1||k8s_db|ns|b"
	for _, name := range []string{"container_cpu_cfs_periods_total", "container_file_descriptors", "container_sockets",
		"container_spec_cpu_period", "container_spec_cpu_shares", "container_spec_memory_swap_limit_bytes"} {
		if m := all[name][b1]; m != nil {
			t.Errorf("%s reported for ctr-b1: %v", name, m)
		}
	}
	if all["container_threads"][b1].GetValue().GetValue() != 2 || all["container_last_seen"][b1] == nil {
		t.Errorf("ctr-b1 threads %v, last seen %v", all["container_threads"][b1], all["container_last_seen"][b1])
	}
}

func keysOf(m map[string]*runtimeapi.Metric) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
