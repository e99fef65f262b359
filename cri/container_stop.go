package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/store"
)

// StopContainer stops a running container with its stop signal and, after
// the timeout, SIGKILL. A missing or stopped container is success.
func (s *RuntimeServer) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	e, err := s.Store.Containers.Lookup(req.GetContainerId())
	if errors.Is(err, store.ErrNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err := s.stopContainer(ctx, e, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopContainer stops the container of e (whose Op lock the caller holds)
// and records its exit.
func (s *RuntimeServer) stopContainer(ctx context.Context, e *store.Entry[store.Container], timeout time.Duration) error {
	c := e.Get()
	if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		return nil
	}
	sig := syscall.Signal(c.StopSignal)
	if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
		timeout = 0 // never started: nothing to stop gracefully
	}
	if err := s.OCI.Stop(ctx, c.ID, sig, timeout); err != nil {
		return fmt.Errorf("stopping container %s: %w", c.ID, err)
	}
	_, err := s.recordExit(e)
	return err
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
