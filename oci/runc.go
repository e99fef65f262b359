package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runtimeWaitDelay bounds how long a runtime call may keep its output pipes
// open after it was killed or exited.
const runtimeWaitDelay = 5 * time.Second

var logMsgPattern = regexp.MustCompile(`msg="((?:[^"\\]|\\.)*)"`)

// runtimeError is a failed runtime call with the runtime's own message.
type runtimeError struct {
	args []string
	msg  string
	err  error
}

func (e *runtimeError) Error() string {
	return fmt.Sprintf("running %s: %s: %v", strings.Join(e.args, " "), e.msg, e.err)
}

func (e *runtimeError) Unwrap() error { return e.err }

// isNotExist reports whether err is the runtime saying the container is gone.
func isNotExist(err error) bool {
	var re *runtimeError
	return errors.As(err, &re) && strings.Contains(re.msg, "does not exist")
}

// isNotRunning reports whether err is the runtime refusing a signal because
// the container process has already exited.
func isNotRunning(err error) bool {
	var re *runtimeError
	return errors.As(err, &re) && (strings.Contains(re.msg, "not running") ||
		strings.Contains(re.msg, "process already finished"))
}

// runtimeMessage extracts the readable message from runtime stderr output.
func runtimeMessage(stderr []byte) string {
	if m := logMsgPattern.FindAllSubmatch(stderr, -1); len(m) > 0 {
		parts := make([]string, 0, len(m))
		for _, sub := range m {
			parts = append(parts, strings.ReplaceAll(string(sub[1]), `\"`, `"`))
		}
		return strings.Join(parts, "; ")
	}
	return strings.TrimSpace(string(stderr))
}

// runtimeArgs returns the global flags of handler h followed by args.
func runtimeArgs(h Handler, args ...string) []string {
	all := append([]string{"--root", h.RuntimeRoot}, h.RuntimeArgs...)
	return append(all, args...)
}

// runRuntime runs one runtime subcommand bounded by ctx and returns stdout.
func (r *Runtime) runRuntime(ctx context.Context, h Handler, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.RuntimePath, runtimeArgs(h, args...)...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = runtimeWaitDelay
	if err := cmd.Run(); err != nil {
		return nil, &runtimeError{args: args, msg: runtimeMessage(stderr.Bytes()), err: err}
	}
	return stdout.Bytes(), nil
}

// Start runs the created container's process (runc start). Starting a
// container that is already running is a no-op.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, h, err := r.handlerFor(id)
	if err != nil {
		return err
	}
	if _, err := r.runRuntime(ctx, h, nil, "start", id); err != nil {
		st, stErr := r.State(ctx, id)
		if stErr == nil && st.Status == StatusRunning {
			return nil
		}
		return fmt.Errorf("starting container: %w", err)
	}
	return nil
}

// Kill sends sig to the container's init process. Signalling a container
// that has already exited is a no-op.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	_, h, err := r.handlerFor(id)
	if err != nil {
		return err
	}
	_, err = r.runRuntime(ctx, h, nil, "kill", id, fmt.Sprint(int(sig)))
	if err != nil && !isNotRunning(err) {
		return fmt.Errorf("signalling container: %w", err)
	}
	return nil
}

// Status is a container state as reported by the runtime.
type Status string

// Runtime statuses (runc state "status").
const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// State is the runtime's view of a container.
type State struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Pid is the init process on the host; 0 once stopped.
	Pid    int       `json:"pid"`
	Bundle string    `json:"bundle"`
	Create time.Time `json:"created"`
}

// State returns runc state for id; a container the runtime no longer knows
// is ErrNotFound.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	_, h, err := r.handlerFor(id)
	if err != nil {
		return State{}, err
	}
	out, err := r.runRuntime(ctx, h, nil, "state", id)
	if isNotExist(err) {
		return State{}, fmt.Errorf("runtime state of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return State{}, fmt.Errorf("reading runtime state: %w", err)
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return State{}, fmt.Errorf("decoding runtime state: %w", err)
	}
	return st, nil
}

// UpdateResources applies res to the running container (runc update).
func (r *Runtime) UpdateResources(ctx context.Context, id string, res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	_, h, err := r.handlerFor(id)
	if err != nil {
		return err
	}
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encoding resources: %w", err)
	}
	if _, err := r.runRuntime(ctx, h, bytes.NewReader(data), "update", "--resources", "-", id); err != nil {
		return fmt.Errorf("updating container resources: %w", err)
	}
	return nil
}
