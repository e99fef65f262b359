package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/supervisor"
)

// allStates are reported for every service: 1 for its current state, 0
// for the others, so a state change shows as a switch between series.
var allStates = []supervisor.State{
	supervisor.StateStarting, supervisor.StateRunning, supervisor.StateFailed,
	supervisor.StateBackoff, supervisor.StateStopped, supervisor.StateFinished,
}

var (
	restartsDesc = prometheus.NewDesc("arbor_service_restarts_total",
		"Restarts of a supervised service.", []string{"service", "domain"}, nil)
	panicsDesc = prometheus.NewDesc("arbor_service_panics_total",
		"Panics recovered in a supervised service.", []string{"service", "domain"}, nil)
	stateDesc = prometheus.NewDesc("arbor_service_state",
		"Whether a supervised service is in the state (1) or not (0).", []string{"service", "domain", "state"}, nil)
)

// serviceCollector reads the supervisor's states at each scrape.
type serviceCollector struct {
	states func() []supervisor.ServiceState
}

// Describe implements prometheus.Collector.
func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- restartsDesc
	ch <- panicsDesc
	ch <- stateDesc
}

// Collect implements prometheus.Collector: one snapshot per scrape.
func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.states() {
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(s.Restarts), s.Name, s.Domain)
		ch <- prometheus.MustNewConstMetric(panicsDesc, prometheus.CounterValue, float64(s.Panics), s.Name, s.Domain)
		for _, st := range allStates {
			v := 0.0
			if s.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, s.Name, s.Domain, string(st))
		}
	}
}

// countOOMKills counts container stop events whose container exited with
// reason OOMKilled, until ctx ends. If the broker drops this subscriber it
// subscribes again (kills in the gap are lost, and logged as such).
func (m *Metrics) countOOMKills(ctx context.Context) {
	b := m.cfg.Events
	for ctx.Err() == nil {
		sub := b.Subscribe()
		m.watch(ctx, sub.Events())
		b.Unsubscribe(sub)
		if !sub.Dropped() {
			return // the broker closed, or ctx ended
		}
		m.log.Warn("Metrics fell behind container events; OOM kills may be undercounted")
	}
}

func (m *Metrics) watch(ctx context.Context, evs <-chan *runtimeapi.ContainerEventResponse) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				return
			}
			if isOOMKill(ev) {
				m.ooms.Inc()
			}
		}
	}
}

// isOOMKill reports whether ev is the stop of a container the OOM killer
// ended.
func isOOMKill(ev *runtimeapi.ContainerEventResponse) bool {
	if ev.GetContainerEventType() != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
		return false
	}
	for _, c := range ev.GetContainersStatuses() {
		if c.GetId() == ev.GetContainerId() {
			return c.GetReason() == "OOMKilled"
		}
	}
	return false
}
