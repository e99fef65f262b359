package cri

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/events"
	"github.com/arbor-cri/arbor/stats"
	"github.com/arbor-cri/arbor/store"
)

// fakeStats returns fixed readings and records what it was asked.
type fakeStats struct {
	mu   sync.Mutex
	pods []stats.PodTarget
}

var statsAt = time.Unix(2000, 0)

func (f *fakeStats) Container(_ context.Context, t stats.ContainerTarget) (stats.ContainerStats, error) {
	if t.CgroupPath == "" {
		return stats.ContainerStats{ID: t.ID}, nil // not running
	}
	rate := uint64(250_000_000)
	out := stats.ContainerStats{
		ID: t.ID, NanoCores: &rate,
		Cgroup: &stats.Cgroup{
			Timestamp: statsAt, Pids: 2, HasPids: true,
			CPU:    stats.CPU{UsageNs: 3_500_000_000, UserNs: 2e9, SystemNs: 1.5e9, PSI: &stats.PSI{Some: stats.PSIData{Total: 9, Avg10: 1}}},
			Memory: stats.Memory{Usage: 100, WorkingSet: 80, RSS: 60, Limit: 1000, PageFaults: 7, MajorFaults: 1, OOMKills: 1},
		},
		Layer: &stats.DiskUsage{Timestamp: statsAt, Mountpoint: "/var/lib/arbor/storage", Bytes: 4096, Inodes: 3},
	}
	if t.ID == "ctr-a1" {
		fullReading(&out)
	}
	return out, nil
}

// fullReading adds the counters a kernel may or may not offer: CFS,
// pids.max, block I/O on two devices, open files, memory extras and the
// file system size.
func fullReading(cs *stats.ContainerStats) {
	cg := cs.Cgroup
	cg.CPU.CFS, cg.CPU.HasCFS = stats.CFS{Periods: 40, ThrottledPeriods: 6, ThrottledNs: 2_500_000_000}, true
	cg.PidsMax = 4096
	cg.Memory.Failcnt, cg.Memory.KernelUsage, cg.Memory.MappedFile = 9, 400_000, 1_200_000
	cg.IO = []stats.DeviceIO{
		{Major: 7, Minor: 1, Device: "7:1", ReadBytes: 512, Reads: 1},
		{Major: 254, Device: "/dev/vda", ReadBytes: 8192, WriteBytes: 4096, Reads: 2, Writes: 1},
	}
	cg.Files = &stats.Files{Descriptors: 5, Sockets: 3}
	cs.Layer.Capacity, cs.Layer.InodesTotal, cs.Layer.InodesFree = 1<<30, 65536, 60000
}

func (f *fakeStats) Pod(ctx context.Context, t stats.PodTarget) (stats.PodStats, error) {
	f.mu.Lock()
	f.pods = append(f.pods, t)
	f.mu.Unlock()
	out := stats.PodStats{ID: t.ID, Cgroup: &stats.Cgroup{Timestamp: statsAt, Pids: 5, HasPids: true}}
	if t.NetNS != "" {
		out.Network = &stats.Network{Timestamp: statsAt, Interfaces: []stats.Interface{
			{Name: "net1", RxBytes: 1}, {Name: "eth0", RxBytes: 500, TxBytes: 700, RxPackets: 5},
		}}
	}
	for _, ct := range t.Containers {
		cs, _ := f.Container(ctx, ct)
		out.Containers = append(out.Containers, cs)
	}
	return out, nil
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// observeServer is a RuntimeServer over a store holding two pods: "pod-a"
// (own network, containers "ctr-a1" running and "ctr-a2" exited) and
// "pod-b" (host network, container "ctr-b1").
func observeServer(t *testing.T, src StatsSource) *RuntimeServer {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hostNet := &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}
	for _, p := range []store.Pod{
		{ID: "pod-a", Name: "a_ns_uid_0", State: runtimeapi.PodSandboxState_SANDBOX_READY, NS: store.Namespaces{Net: "/run/netns/a"},
			Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "a", Namespace: "ns", Uid: "uid-a"},
				Labels: map[string]string{"app": "a"}, Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/poda"}}},
		{ID: "pod-b", Name: "b_ns_uid_0", State: runtimeapi.PodSandboxState_SANDBOX_READY, InfraPid: 1,
			Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "b", Namespace: "ns", Uid: "uid-b"},
				Labels: map[string]string{"app": "b"}, Linux: hostNet}},
	} {
		st.Pods.Add(p.ID, p)
	}
	for _, c := range []store.Container{
		{ID: "ctr-a1", PodID: "pod-a", Name: "k8s_web", CgroupPath: "/kubepods/poda/arbor-ctr-a1", ImageName: "busybox:latest",
			State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: 5e9,
			Resources: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 1024,
				MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20},
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "web"}, Labels: map[string]string{"tier": "front"}}},
		{ID: "ctr-a2", PodID: "pod-a", Name: "k8s_init", State: runtimeapi.ContainerState_CONTAINER_EXITED,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "init"}}},
		{ID: "ctr-b1", PodID: "pod-b", Name: "k8s_db", CgroupPath: "/arbor-ctr-b1",
			State:  runtimeapi.ContainerState_CONTAINER_RUNNING,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "db"}, Labels: map[string]string{"tier": "back"}}},
	} {
		st.Containers.Add(c.ID, c)
	}
	return NewRuntimeServer(RuntimeInfo{}, Deps{Store: st, Stats: src, Events: events.NewContainerBroker(8, quietLog())}, quietLog())
}

func TestContainerStats(t *testing.T) {
	s := observeServer(t, &fakeStats{})
	ctx := context.Background()
	resp, err := s.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "ctr-a1"})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetStats()
	if st.GetAttributes().GetId() != "ctr-a1" || st.GetAttributes().GetMetadata().GetName() != "web" || st.GetAttributes().GetLabels()["tier"] != "front" {
		t.Fatalf("attributes %v", st.GetAttributes())
	}
	cpu, mem, wl := st.GetCpu(), st.GetMemory(), st.GetWritableLayer()
	if cpu.GetTimestamp() != statsAt.UnixNano() || cpu.GetUsageCoreNanoSeconds().GetValue() != 3_500_000_000 ||
		cpu.GetUsageNanoCores().GetValue() != 250_000_000 || cpu.GetPsi().GetSome().GetTotal() != 9 {
		t.Fatalf("cpu %v", cpu)
	}
	if mem.GetWorkingSetBytes().GetValue() != 80 || mem.GetAvailableBytes().GetValue() != 920 || mem.GetRssBytes().GetValue() != 60 ||
		mem.GetUsageBytes().GetValue() != 100 || mem.GetPageFaults().GetValue() != 7 || mem.GetMajorPageFaults().GetValue() != 1 {
		t.Fatalf("memory %v", mem)
	}
	if wl.GetFsId().GetMountpoint() != "/var/lib/arbor/storage" || wl.GetUsedBytes().GetValue() != 4096 || wl.GetInodesUsed().GetValue() != 3 {
		t.Fatalf("writable layer %v", wl)
	}
	exited, err := s.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "ctr-a2"})
	if err != nil || exited.GetStats().GetCpu() != nil || exited.GetStats().GetAttributes().GetId() != "ctr-a2" {
		t.Fatalf("an exited container has attributes and no counters: %v, %v", exited, err)
	}
	_, err = s.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "nope"})
	if status.Code(toStatus(err)) != codes.NotFound {
		t.Fatalf("unknown container: %v", err)
	}
}

func TestListContainerStatsFilter(t *testing.T) {
	s := observeServer(t, &fakeStats{})
	cases := []struct {
		name   string
		filter *runtimeapi.ContainerStatsFilter
		want   []string
	}{
		{name: "all", want: []string{"ctr-a1", "ctr-a2", "ctr-b1"}},
		{name: "by pod", filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: "pod-a"}, want: []string{"ctr-a1", "ctr-a2"}},
		{name: "by id prefix", filter: &runtimeapi.ContainerStatsFilter{Id: "ctr-b"}, want: []string{"ctr-b1"}},
		{name: "by label", filter: &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"tier": "front"}}, want: []string{"ctr-a1"}},
		{name: "no match", filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: "pod-a", LabelSelector: map[string]string{"tier": "back"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.ListContainerStats(context.Background(), &runtimeapi.ListContainerStatsRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range resp.GetStats() {
				got = append(got, st.GetAttributes().GetId())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPodSandboxStats(t *testing.T) {
	src := &fakeStats{}
	s := observeServer(t, src)
	ctx := context.Background()
	resp, err := s.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "pod-a"})
	if err != nil {
		t.Fatal(err)
	}
	lx := resp.GetStats().GetLinux()
	if resp.GetStats().GetAttributes().GetMetadata().GetUid() != "uid-a" || lx.GetProcess().GetProcessCount().GetValue() != 5 {
		t.Fatalf("pod stats %v", resp.GetStats())
	}
	net := lx.GetNetwork()
	if net.GetDefaultInterface().GetName() != "eth0" || net.GetDefaultInterface().GetRxBytes().GetValue() != 500 ||
		len(net.GetInterfaces()) != 1 || net.GetInterfaces()[0].GetName() != "net1" {
		t.Fatalf("network %v", net)
	}
	if len(lx.GetContainers()) != 2 || lx.GetContainers()[0].GetAttributes().GetId() != "ctr-a1" {
		t.Fatalf("containers %v", lx.GetContainers())
	}
	if _, err := s.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "pod-b"}); err != nil {
		t.Fatal(err)
	}
	a, b := src.pods[0], src.pods[1]
	if a.CgroupPath != "/kubepods/poda" || a.NetNS != "/run/netns/a" || len(a.Containers) != 2 {
		t.Fatalf("pod-a target %+v", a)
	}
	if b.NetNS != "" || b.Pid != 0 {
		t.Fatalf("a host-network pod must not read the node's interfaces: %+v", b)
	}
	_, err = s.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "nope"})
	if status.Code(toStatus(err)) != codes.NotFound {
		t.Fatalf("unknown pod: %v", err)
	}
	list, err := s.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{
		Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "b"}}})
	if err != nil || len(list.GetStats()) != 1 || list.GetStats()[0].GetAttributes().GetId() != "pod-b" {
		t.Fatalf("label filter: %v, %v", list, err)
	}
}

func TestStatsWithoutCollector(t *testing.T) {
	s := observeServer(t, nil)
	s.Stats = nil
	_, err := s.ContainerStats(context.Background(), &runtimeapi.ContainerStatsRequest{ContainerId: "ctr-a1"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("want Unavailable, got %v", err)
	}
}

func TestPodSandboxMetrics(t *testing.T) {
	s := observeServer(t, &fakeStats{})
	ctx := context.Background()
	desc, err := s.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range desc.GetDescriptors() {
		if !sort.StringsAreSorted(d.GetLabelKeys()) {
			t.Fatalf("%s label keys not sorted: %v", d.GetName(), d.GetLabelKeys())
		}
		keys[d.GetName()] = d.GetLabelKeys()
	}
	for _, want := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
		"container_memory_rss", "container_network_receive_bytes_total", "container_network_transmit_bytes_total"} {
		if keys[want] == nil {
			t.Fatalf("descriptor %s missing", want)
		}
	}
	resp, err := s.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]*runtimeapi.Metric{}
	check := func(m *runtimeapi.Metric) {
		k, ok := keys[m.GetName()]
		if !ok || len(k) != len(m.GetLabelValues()) {
			t.Fatalf("metric %s has %d label values for keys %v", m.GetName(), len(m.GetLabelValues()), k)
		}
		values[m.GetName()+"/"+m.GetLabelValues()[slices.Index(k, "id")]] = m
	}
	for _, pm := range resp.GetPodMetrics() {
		for _, m := range pm.GetMetrics() {
			check(m)
		}
		for _, cm := range pm.GetContainerMetrics() {
			for _, m := range cm.GetMetrics() {
				check(m)
			}
		}
	}
	cpu := values["container_cpu_usage_seconds_total//kubepods/poda/arbor-ctr-a1"]
	if cpu.GetValue().GetValue() != 3 || cpu.GetMetricType() != runtimeapi.MetricType_COUNTER ||
		!slices.Equal(cpu.GetLabelValues(), []string{"web", "/kubepods/poda/arbor-ctr-a1", "busybox:latest", "k8s_web", "ns", "a"}) {
		t.Fatalf("cpu metric %v", cpu)
	}
	if ws := values["container_memory_working_set_bytes//kubepods/poda/arbor-ctr-a1"]; ws.GetValue().GetValue() != 80 {
		t.Fatalf("working set metric %v", ws)
	}
	rx := values["container_network_receive_bytes_total//kubepods/poda"]
	if rx == nil || rx.GetLabelValues()[3] != "net1" && rx.GetLabelValues()[3] != "eth0" {
		t.Fatalf("network metric %v", rx)
	}
	if _, ok := values["container_network_receive_bytes_total/pod-b"]; ok {
		t.Fatal("a host-network pod has no network metrics")
	}
}

// eventStream is a GetContainerEvents stream that records what is sent;
// with a gate, Send waits for the gate to close first (a stalled client).
type eventStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent chan *runtimeapi.ContainerEventResponse
	gate chan struct{}
}

func (e *eventStream) Context() context.Context { return e.ctx }

func (e *eventStream) Send(ev *runtimeapi.ContainerEventResponse) error {
	if e.gate != nil {
		<-e.gate
	}
	e.sent <- ev
	return nil
}

// streamEvents runs GetContainerEvents until it returns, after the
// subscription exists.
func streamEvents(t *testing.T, s *RuntimeServer, es *eventStream) <-chan error {
	t.Helper()
	before := s.Events.Subscribers()
	done := make(chan error, 1)
	go func() { done <- s.GetContainerEvents(&runtimeapi.GetEventsRequest{}, es) }()
	for s.Events.Subscribers() == before {
		time.Sleep(time.Millisecond)
	}
	return done
}

func TestContainerEvents(t *testing.T) {
	s := observeServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	es := &eventStream{ctx: ctx, sent: make(chan *runtimeapi.ContainerEventResponse, 16)}
	done := streamEvents(t, s, es)

	e, _ := s.Store.Containers.Lookup("ctr-a1")
	s.publish(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, e.Get())
	ev := <-es.sent
	if ev.GetContainerId() != "ctr-a1" || ev.GetContainerEventType() != runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT ||
		ev.GetCreatedAt() == 0 || ev.GetPodSandboxStatus().GetMetadata().GetUid() != "uid-a" || len(ev.GetContainersStatuses()) != 2 {
		t.Fatalf("event %v", ev)
	}
	s.Store.Containers.Remove("ctr-a2", "k8s_init")
	gone := store.Container{ID: "ctr-a2", PodID: "pod-a"}
	s.publish(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, gone)
	if ev := <-es.sent; len(ev.GetContainersStatuses()) != 1 || ev.GetContainersStatuses()[0].GetId() != "ctr-a1" {
		t.Fatalf("a deleted container is no longer among the statuses: %v", ev.GetContainersStatuses())
	}
	p, _ := s.Store.Pods.Lookup("pod-b")
	s.publishPod(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, p.Get())
	if ev := <-es.sent; ev.GetContainerId() != "pod-b" || ev.GetPodSandboxStatus().GetId() != "pod-b" {
		t.Fatalf("pod event %v", ev)
	}
	s.publish(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, store.Container{ID: "x", PodID: "gone"})
	if ev := <-es.sent; ev.GetPodSandboxStatus().GetId() != "gone" {
		t.Fatalf("an event of a removed pod still carries its ID: %v", ev)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("a client that leaves ends the stream cleanly: %v", err)
	}
	if n := s.Events.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left after the stream ended", n)
	}
}

func TestSlowEventClientIsDropped(t *testing.T) {
	s := observeServer(t, nil)
	es := &eventStream{ctx: context.Background(), sent: make(chan *runtimeapi.ContainerEventResponse, 20), gate: make(chan struct{})}
	done := streamEvents(t, s, es)
	e, _ := s.Store.Containers.Lookup("ctr-b1")
	for range 20 { // the buffer holds 8, plus one stuck in Send
		s.publish(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, e.Get())
	}
	if s.Events.Dropped() != 1 {
		t.Fatalf("dropped %d subscribers, want 1", s.Events.Dropped())
	}
	close(es.gate) // the client catches up: it gets what was buffered, then the end
	if err := <-done; status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a dropped client ends with ResourceExhausted: %v", err)
	}
	if n := len(es.sent); n < 8 || n > 9 {
		t.Fatalf("the dropped client got %d events, want its buffer", n)
	}

	closing := streamEvents(t, s, &eventStream{ctx: context.Background(), sent: make(chan *runtimeapi.ContainerEventResponse, 1)})
	s.Events.Close()
	if err := <-closing; status.Code(err) != codes.Unavailable {
		t.Fatalf("a closing broker ends streams with Unavailable: %v", err)
	}
}
