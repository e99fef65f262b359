package supervisor

import (
	"fmt"

	"github.com/thejerf/suture/v4"
)

// hook turns suture's events into one structured log line each. Restart
// counts are kept by the service wrapper, which sees every run.
func (t *Tree) hook(e suture.Event) {
	switch ev := e.(type) {
	case suture.EventServicePanic:
		t.states.countPanic(ev.ServiceName)
		t.log.Error("Service panicked", "service", ev.ServiceName, "supervisor", ev.SupervisorName,
			"panic", ev.PanicMsg, "restarting", ev.Restarting, "failures", ev.CurrentFailures,
			"stack", ev.Stacktrace)
	case suture.EventServiceTerminate:
		t.log.Warn("Service failed", "service", ev.ServiceName, "supervisor", ev.SupervisorName,
			"error", fmt.Sprint(ev.Err), "restarting", ev.Restarting, "failures", ev.CurrentFailures)
	case suture.EventBackoff:
		t.states.setDomainBackoff(ev.SupervisorName, true)
		t.log.Warn("Supervisor backing off", "supervisor", ev.SupervisorName)
	case suture.EventResume:
		t.states.setDomainBackoff(ev.SupervisorName, false)
		t.log.Info("Supervisor resuming", "supervisor", ev.SupervisorName)
	case suture.EventStopTimeout:
		t.log.Error("Service did not stop in time", "service", ev.ServiceName, "supervisor", ev.SupervisorName)
	default:
		t.log.Warn("Supervisor event", "event", e.String())
	}
}
