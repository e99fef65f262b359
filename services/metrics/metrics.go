// Package metrics is the daemon's optional Prometheus endpoint: per CRI
// method call counts, errors and latency, image pull outcomes, the bytes
// and layers image downloads fetched or reused, container OOM kills,
// dropped event subscribers, and each supervised service's restarts and
// state. It serves /metrics on a loopback TCP
// address or a unix socket, and refuses any other address unless told
// otherwise. Every Observe method is safe on a nil *Metrics, so callers
// need no check when metrics are off.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/arbor-cri/arbor/events"
	"github.com/arbor-cri/arbor/supervisor"
)

// Config configures the metrics service.
type Config struct {
	// Address is a loopback "host:port" (127.0.0.1:9090, [::1]:9090,
	// localhost:9090) or a unix socket path ("/run/arbor/metrics.sock" or
	// "unix:///run/arbor/metrics.sock").
	Address string
	// AllowNonLoopback permits any TCP address, all interfaces included.
	AllowNonLoopback bool
	// States reads the supervisor's service states; nil reports none.
	States func() []supervisor.ServiceState
	// Events is the container event broker: its dropped subscribers are
	// reported, and Serve counts the OOM kills its stop events carry. Nil
	// reports neither.
	Events *events.ContainerBroker
}

// Metrics holds the daemon's metrics and serves them.
type Metrics struct {
	cfg     Config
	network string // "tcp" or "unix"
	addr    string
	log     *slog.Logger
	reg     *prometheus.Registry

	calls     *prometheus.CounterVec
	errors    *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	pulls     *prometheus.CounterVec
	pullBytes prometheus.Counter
	layers    *prometheus.CounterVec
	ooms      prometheus.Counter
}

// latencyBuckets span a quick status call to a slow image pull, in seconds.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// New checks the address and builds the metrics; it listens only in Serve.
func New(cfg Config, log *slog.Logger) (*Metrics, error) {
	network, addr, err := ParseAddress(cfg.Address, cfg.AllowNonLoopback)
	if err != nil {
		return nil, err
	}
	m := &Metrics{cfg: cfg, network: network, addr: addr, log: log, reg: prometheus.NewRegistry()}
	m.build()
	return m, nil
}

func (m *Metrics) build() {
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arbor_cri_operations_total", Help: "CRI calls, by method.",
	}, []string{"method"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arbor_cri_operation_errors_total", Help: "CRI calls that returned an error, by method and gRPC code.",
	}, []string{"method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "arbor_cri_operation_duration_seconds", Help: "CRI call latency in seconds, by method.", Buckets: latencyBuckets,
	}, []string{"method"})
	m.pulls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arbor_image_pulls_total", Help: "Image pulls, by outcome (a gRPC code name; OK is success).",
	}, []string{"outcome"})
	m.pullBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arbor_image_pull_bytes_total",
		Help: "Bytes image downloads read from registries and archives, failed ones included; " +
			"a download several pulls share counts once.",
	})
	m.layers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arbor_image_pull_layers_total",
		Help: "Image layers downloads met, by whether they were fetched or reused (already stored).",
	}, []string{"source"})
	m.ooms = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arbor_container_oom_kills_total", Help: "Containers that exited because the kernel OOM killer killed them.",
	})
	m.reg.MustRegister(m.calls, m.errors, m.latency, m.pulls, m.pullBytes, m.layers, m.ooms,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if b := m.cfg.Events; b != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "arbor_events_dropped_subscribers_total", Help: "Container event subscribers dropped for falling behind.",
		}, func() float64 { return float64(b.Dropped()) }))
	}
	if m.cfg.States != nil {
		m.reg.MustRegister(&serviceCollector{states: m.cfg.States})
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe records one CRI call: method is the bare method name
// ("RunPodSandbox"), code the gRPC code name ("OK", "NotFound").
func (m *Metrics) Observe(method string, took time.Duration, code string) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(method).Inc()
	if code != "OK" {
		m.errors.WithLabelValues(method, code).Inc()
	}
	m.latency.WithLabelValues(method).Observe(took.Seconds())
}

// ObservePull records the outcome of one PullImage call as a gRPC code
// name ("OK", "NotFound").
func (m *Metrics) ObservePull(code string) {
	if m == nil {
		return
	}
	m.pulls.WithLabelValues(code).Inc()
}

// ObserveDownload records one image download: the bytes it read and the
// layers it fetched and reused. Several PullImage calls can share one.
func (m *Metrics) ObserveDownload(bytes uint64, layersFetched, layersReused int) {
	if m == nil {
		return
	}
	m.pullBytes.Add(float64(bytes))
	m.layers.WithLabelValues("fetched").Add(float64(layersFetched))
	m.layers.WithLabelValues("reused").Add(float64(layersReused))
}

// ObserveOOMKill counts a container killed by the OOM killer. Serve counts
// them itself from the event broker when Config.Events is set; call this
// only without one.
func (m *Metrics) ObserveOOMKill() {
	if m == nil {
		return
	}
	m.ooms.Inc()
}
