package cri

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/store"
)

// Recording container exits: conmon writes an exit file when a container's
// process ends, the exit monitor reports it (ContainerExited), and the
// record takes the code, time and reason. A conmon that dies first leaves
// no file; the monitor's sweep (SweepLostMonitors) finds those.

// ContainerExited records the exit of a container whose exit file just
// appeared; the exit monitor calls it. An infra container's exit makes its
// pod not ready (infraExited); unknown IDs (removed containers) are
// ignored.
func (s *RuntimeServer) ContainerExited(id string) {
	e, err := s.Store.Containers.Lookup(id)
	if err != nil || e.ID != id {
		s.infraExited(id)
		return
	}
	if _, err := s.recordExit(e); err != nil {
		s.log.Warn("Cannot record container exit", "container_id", id, "error", err)
	}
}

// recordExit reads the container's exit file and, if it has exited,
// records code, time and reason. It needs only the data lock, so the exit
// monitor calls it too.
func (s *RuntimeServer) recordExit(e *store.Entry[store.Container]) (bool, error) {
	code, finished, ok, err := s.OCI.ReadExit(e.ID)
	if err != nil || !ok {
		return false, err
	}
	var changed bool
	c := e.Update(func(c *store.Container) {
		if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return
		}
		changed = true
		c.State = runtimeapi.ContainerState_CONTAINER_EXITED
		c.ExitCode = int32(code)
		c.FinishedAt = finished.UnixNano()
		c.Pid = 0
		c.Reason = exitReason(code, c.CgroupPath, s.Host.CgroupVersion == spec.CgroupV2)
	})
	if !changed {
		return true, nil
	}
	// Not always under the Op lock: SaveContainerOf keeps the record from
	// going back, or coming back after a removal.
	if err := s.Store.SaveContainerOf(e); err != nil {
		return true, err
	}
	s.publish(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
	s.nriStopped(c)
	return true, nil
}

// exitReason is OOMKilled when the container's memory cgroup counted an
// OOM kill, else Completed or Error by exit code.
func exitReason(code int, cgroupPath string, v2 bool) string {
	if cgroupPath != "" && oomKills(cgroupPath, v2) > 0 {
		return "OOMKilled"
	}
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

func oomKills(cgroupPath string, v2 bool) int {
	file := filepath.Join("/sys/fs/cgroup/memory", cgroupPath, "memory.oom_control")
	if v2 {
		file = filepath.Join("/sys/fs/cgroup", cgroupPath, "memory.events")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// markLost records the exit of e's container if it has an exit file, or,
// if its conmon and its process are gone without leaving one (a reboot, a
// killed conmon), marks it exited with an unknown code (lost). A process
// that outlives its conmon still runs, and is left running. The caller
// holds e's Op lock, or is restoring.
func (s *RuntimeServer) markLost(e *store.Entry[store.Container]) (exited, lost bool, err error) {
	if exited, err := s.recordExit(e); exited || err != nil {
		return exited, false, err
	}
	if !s.OCI.Lost(e.ID) {
		return false, false, nil
	}
	// conmon may have written the file just before it went.
	if exited, err := s.recordExit(e); exited || err != nil {
		return exited, false, err
	}
	c := e.Update(func(c *store.Container) {
		c.State, c.ExitCode, c.Reason = runtimeapi.ContainerState_CONTAINER_EXITED, 255, "Unknown"
		c.Message = "the container's monitor is gone and left no exit code"
		c.FinishedAt, c.Pid = time.Now().UnixNano(), 0
	})
	if err := s.Store.SaveContainerOf(e); err != nil {
		s.log.Warn("Cannot save container record", "container_id", c.ID, "error", err)
	}
	return true, true, nil
}

// SweepLostMonitors finds created and running containers whose conmon is
// gone without an exit file, which the exit monitor never hears of, and
// marks them exited (markLost), so that the kubelet sees them end and
// restarts them. A container some call is working on is left to the next
// sweep. The exit monitor calls it every few seconds.
func (s *RuntimeServer) SweepLostMonitors() {
	for _, e := range s.Store.Containers.All() {
		if e.Get().State == runtimeapi.ContainerState_CONTAINER_EXITED || !e.Op.TryLock() {
			continue
		}
		if !e.Removed() {
			if _, lost, _ := s.markLost(e); lost {
				s.log.Warn("Container monitor gone without an exit code: container marked exited", "container_id", e.ID)
				s.publish(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, e.Get())
				s.nriStopped(e.Get())
			}
		}
		e.Op.Unlock()
	}
}
