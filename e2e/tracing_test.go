package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// collector is a tiny OTLP gRPC trace collector that keeps every span it
// is sent, with the service.name of its resource.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []collected
}

type collected struct {
	service string
	span    *tracepb.Span
}

// Export records the spans of one OTLP export request.
func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, collected{service, s})
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// byName returns the recorded spans named name.
func (c *collector) byName(name string) []collected {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []collected
	for _, s := range c.spans {
		if s.span.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

// missing returns those of names that no recorded span has.
func (c *collector) missing(names []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	have := map[string]bool{}
	for _, s := range c.spans {
		have[s.span.GetName()] = true
	}
	var out []string
	for _, n := range names {
		if !have[n] {
			out = append(out, n)
		}
	}
	return out
}

func (c *collector) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.spans {
		out = append(out, s.span.GetName())
	}
	sort.Strings(out)
	return out
}

// startCollector serves a collector on a free loopback port until the
// test ends.
func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(l)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return c, l.Addr().String()
}

// TestTracing runs a pod and a container with every call sampled and
// checks that the collector holds a span for each create RPC with a child
// per step. The daemon exports a batch every 100 ms (not every 5 s): the
// test waits for the spans while the daemon runs rather than relying on
// the bounded flush at stop.
func TestTracing(t *testing.T) {
	col, addr := startCollector(t)
	pt := newPodTestEnv(t, []string{"OTEL_BSP_SCHEDULE_DELAY=100"}, "--enable-tracing", "--tracing-endpoint", addr,
		"--tracing-sampling-rate-per-million", "1000000")
	pod := pt.podConfig("traced")
	podID := pt.runPod(pod)
	pt.createAndStart(podID, pod, pt.ctrConfig("sleeper", "sleep 3600"))

	cases := []struct {
		rpc   string
		steps []string
	}{
		{"RunPodSandbox", []string{"creating pod folder", "creating cgroup parent", "pinning namespaces",
			"writing pod files", "setting up network", "starting infra container"}},
		{"CreateContainer", []string{"resolving image", "creating rootfs", "mounting image volumes",
			"writing bundle", "creating process"}},
	}
	// Every span has ended by now; wait until each was exported.
	want := []string{}
	for _, tc := range cases {
		want = append(want, "runtime.v1.RuntimeService/"+tc.rpc)
		for _, step := range tc.steps {
			want = append(want, tc.rpc+"/"+step)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for missing := col.missing(want); len(missing) > 0; missing = col.missing(want) {
		if time.Now().After(deadline) {
			t.Fatalf("spans not exported within 30s: %v; got %v", missing, col.names())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pt.finish()

	for _, tc := range cases {
		t.Run(tc.rpc, func(t *testing.T) {
			rpcs := col.byName("runtime.v1.RuntimeService/" + tc.rpc)
			if len(rpcs) != 1 {
				t.Fatalf("%d spans for the %s RPC, want 1; spans: %v", len(rpcs), tc.rpc, col.names())
			}
			rpc := rpcs[0]
			if rpc.service != "arbor" {
				t.Errorf("service.name = %q, want arbor", rpc.service)
			}
			for _, step := range tc.steps {
				checkStepSpan(t, col, tc.rpc+"/"+step, rpc.span)
			}
		})
	}
}

// checkStepSpan requires one span named name, a child of parent that
// ended without an error status.
func checkStepSpan(t *testing.T, col *collector, name string, parent *tracepb.Span) {
	t.Helper()
	got := col.byName(name)
	if len(got) != 1 {
		t.Errorf("%d spans named %q, want 1", len(got), name)
		return
	}
	s := got[0].span
	if hex.EncodeToString(s.GetTraceId()) != hex.EncodeToString(parent.GetTraceId()) ||
		hex.EncodeToString(s.GetParentSpanId()) != hex.EncodeToString(parent.GetSpanId()) {
		t.Errorf("%q is not a child of the RPC span %q", name, parent.GetName())
	}
	if s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("%q ended with an error: %s", name, s.GetStatus().GetMessage())
	}
	if !strings.HasPrefix(name, parent.GetName()[strings.LastIndex(parent.GetName(), "/")+1:]+"/") {
		t.Errorf("%q is not named after its RPC", name)
	}
}

// TestTracingCollectorDown points the daemon at a port nothing listens on:
// it must start, serve a pod and stop cleanly, dropping its spans.
func TestTracingCollectorDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pt := newPodTest(t, "--enable-tracing", "--tracing-endpoint", addr,
		"--tracing-sampling-rate-per-million", "1000000")
	pt.runPod(pt.podConfig("untraced"))
	pt.finish()
	if !strings.Contains(pt.d.Log(), "Tracing enabled") {
		t.Errorf("the daemon did not log that tracing is on:\n%s", pt.d.Log())
	}
}
