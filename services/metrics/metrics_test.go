package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/events"
	"github.com/arbor-cri/arbor/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestParseAddress(t *testing.T) {
	cases := []struct {
		addr          string
		allow         bool
		network, want string
		err           error // nil: ok; errAny: some error
	}{
		{addr: "127.0.0.1:9090", network: "tcp", want: "127.0.0.1:9090"},
		{addr: "[::1]:9090", network: "tcp", want: "[::1]:9090"},
		{addr: "localhost:9090", network: "tcp", want: "localhost:9090"},
		{addr: "/run/arbor/metrics.sock", network: "unix", want: "/run/arbor/metrics.sock"},
		{addr: "unix:///run/arbor/m.sock", network: "unix", want: "/run/arbor/m.sock"},
		{addr: "unix://relative.sock", err: errAny},
		{addr: "0.0.0.0:9090", err: ErrNotLoopback},
		{addr: ":9090", err: ErrNotLoopback},
		{addr: "10.1.2.3:9090", err: ErrNotLoopback},
		{addr: "node.example:9090", err: ErrNotLoopback},
		{addr: "0.0.0.0:9090", allow: true, network: "tcp", want: "0.0.0.0:9090"},
		{addr: "", err: errAny},
		{addr: "127.0.0.1", err: errAny},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			network, got, err := ParseAddress(tc.addr, tc.allow)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.err == errAny && err == nil, tc.err != nil && tc.err != errAny && !errors.Is(err, tc.err):
				t.Fatalf("want error %v, got %v", tc.err, err)
			case tc.err == nil && (network != tc.network || got != tc.want):
				t.Fatalf("got %s %s, want %s %s", network, got, tc.network, tc.want)
			}
		})
	}
	if _, err := New(Config{Address: "0.0.0.0:1"}, quiet()); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("New must refuse a non-loopback address: %v", err)
	}
}

var errAny = errors.New("any error")

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestHandlerOutput(t *testing.T) {
	broker := events.NewContainerBroker(1, quiet())
	states := []supervisor.ServiceState{
		{Name: "listener", Domain: "core", State: supervisor.StateRunning, Restarts: 2, Panics: 1},
		{Name: "stats", Domain: "monitors", State: supervisor.StateBackoff},
	}
	m, err := New(Config{Address: "127.0.0.1:0", States: func() []supervisor.ServiceState { return states }, Events: broker}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	m.Observe("RunPodSandbox", 20*time.Millisecond, "OK")
	m.Observe("RunPodSandbox", 3*time.Second, "Internal")
	m.Observe("ContainerStatus", time.Millisecond, "NotFound")
	m.ObservePull("OK")
	m.ObservePull("OK")
	m.ObservePull("NotFound")
	m.ObserveDownload(1000, 2, 0)
	m.ObserveDownload(5000, 1, 3)
	m.ObserveOOMKill()
	sub := broker.Subscribe()
	broker.Publish(nil)
	broker.Publish(nil) // overflows the buffer of 1: dropped
	if !sub.Dropped() {
		t.Fatal("the subscriber should have been dropped")
	}
	out := scrape(t, m.Handler())
	for _, want := range []string{
		`arbor_cri_operations_total{method="RunPodSandbox"} 2`,
		`arbor_cri_operation_errors_total{code="Internal",method="RunPodSandbox"} 1`,
		`arbor_cri_operation_errors_total{code="NotFound",method="ContainerStatus"} 1`,
		`arbor_cri_operation_duration_seconds_bucket{method="RunPodSandbox",le="0.025"} 1`,
		`arbor_cri_operation_duration_seconds_count{method="RunPodSandbox"} 2`,
		`arbor_image_pulls_total{outcome="OK"} 2`,
		`arbor_image_pulls_total{outcome="NotFound"} 1`,
		`arbor_image_pull_bytes_total 6000`,
		`arbor_image_pull_layers_total{source="fetched"} 3`,
		`arbor_image_pull_layers_total{source="reused"} 3`,
		`arbor_container_oom_kills_total 1`,
		`arbor_events_dropped_subscribers_total 1`,
		`arbor_service_restarts_total{domain="core",service="listener"} 2`,
		`arbor_service_panics_total{domain="core",service="listener"} 1`,
		`arbor_service_state{domain="core",service="listener",state="running"} 1`,
		`arbor_service_state{domain="core",service="listener",state="failed"} 0`,
		`arbor_service_state{domain="monitors",service="stats",state="backoff"} 1`,
		`go_goroutines `,
	} {
		line := "\n" + want
		if !strings.HasSuffix(want, " ") {
			line += "\n" // a whole line, so "2" does not match "20"
		}
		if !strings.Contains("\n"+out, line) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, `arbor_cri_operation_errors_total{code="OK"`) {
		t.Error("successful calls must not count as errors")
	}
	var nilMetrics *Metrics
	nilMetrics.Observe("Version", time.Millisecond, "OK") // metrics off: no panic
	nilMetrics.ObservePull("OK")
	nilMetrics.ObserveDownload(1, 1, 1)
	nilMetrics.ObserveOOMKill()
}

// TestServeUnixSocket serves on a real unix socket, counts an OOM kill
// from a container stop event, and removes the socket at stop.
func TestServeUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	broker := events.NewContainerBroker(16, quiet())
	m, err := New(Config{Address: "unix://" + sock, Events: broker}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer client.CloseIdleConnections()
	get := func() string {
		resp, err := client.Get("http://arbor/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	oom := &runtimeapi.ContainerEventResponse{
		ContainerId: "c1", ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		ContainersStatuses: []*runtimeapi.ContainerStatus{{Id: "c0", Reason: "OOMKilled"}, {Id: "c1", Reason: "OOMKilled"}},
	}
	notOOM := &runtimeapi.ContainerEventResponse{
		ContainerId: "c0", ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		ContainersStatuses: []*runtimeapi.ContainerStatus{{Id: "c0", Reason: "Completed"}, {Id: "c1", Reason: "OOMKilled"}},
	}
	waitFor(t, func() bool { return broker.Subscribers() == 1 && get() != "" })
	broker.Publish(notOOM)
	broker.Publish(oom)
	broker.Publish(&runtimeapi.ContainerEventResponse{ContainerId: "c1"}) // created: not a kill
	waitFor(t, func() bool { return strings.Contains(get(), "arbor_container_oom_kills_total 1\n") })
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&0o007 != 0 {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve at stop: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("the socket must be removed at stop: %v", err)
	}
	if broker.Subscribers() != 0 {
		t.Fatal("the OOM watcher must unsubscribe at stop")
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m, err := New(Config{Address: ln.Addr().String()}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Serve(context.Background()); err == nil {
		t.Fatal("serving on a taken port must fail")
	}
}
