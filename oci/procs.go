package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pollInterval is how often process and file waits look again.
const pollInterval = 50 * time.Millisecond

// readPidFile returns the pid stored in path; a missing file is 0, nil.
func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("parsing pid file %s: %w", path, err)
	}
	return pid, nil
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the last ')' (the command name may contain one).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	state := data[i+2]
	return state != 'Z' && state != 'X'
}

// cmdline returns the argv of pid, or nil if it is gone.
func cmdline(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// conmonOwner returns the container ID of a conmon process started by a
// Runtime with this Config (same binary and exit folder), or "".
func (r *Runtime) conmonOwner(pid int) string {
	argv := cmdline(pid)
	if len(argv) == 0 || filepath.Base(argv[0]) != filepath.Base(r.cfg.ConmonPath) {
		return ""
	}
	var id, exitDir string
	for i := 1; i+1 < len(argv); i++ {
		switch argv[i] {
		case "-c", "--cid":
			id = argv[i+1]
		case "--exit-dir":
			exitDir = argv[i+1]
		}
	}
	if exitDir != r.cfg.ExitDir {
		return ""
	}
	return id
}

// ConmonPID returns the pid of the live conmon monitoring container id, or
// 0 if none is running.
func (r *Runtime) ConmonPID(id string) (int, error) {
	if err := validateID(id); err != nil {
		return 0, err
	}
	pid, err := readPidFile(r.conmonPidFile(id))
	if err != nil || pid == 0 {
		return 0, err
	}
	if !processAlive(pid) || r.conmonOwner(pid) != id {
		return 0, nil
	}
	return pid, nil
}

// Pids lists every live conmon process started with this Config, keyed by
// container ID, so a leak checker can find monitors of unknown containers.
func (r *Runtime) Pids() (map[string]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	pids := map[string]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !processAlive(pid) {
			continue
		}
		if id := r.conmonOwner(pid); id != "" {
			pids[id] = pid
		}
	}
	return pids, nil
}

// descendants returns every process below pid, children before their own
// children.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		kids := children(p)
		out = append(out, kids...)
		queue = append(queue, kids...)
	}
	return out
}

// children lists the direct children of pid from /proc.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []int
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// waitUntil polls done until it is true, ctx ends or timeout passes; it
// reports whether done became true.
func waitUntil(ctx context.Context, timeout time.Duration, done func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// Most waits end within a few milliseconds (a killed process exits at
	// once), so poll fast first and back off to pollInterval.
	wait := time.Millisecond
	for {
		if done() {
			return true
		}
		tick := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tick.Stop()
			return done()
		case <-deadline.C:
			tick.Stop()
			return done()
		case <-tick.C:
		}
		wait = min(wait*2, pollInterval)
	}
}
