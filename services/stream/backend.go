package stream

import (
	"context"
	"errors"
	"io"

	"github.com/arbor-cri/arbor/oci"
)

// Lookup errors a Backend returns (wrapped is fine). The Get* methods turn
// them into gRPC NotFound and FailedPrecondition; oci.ErrNotFound and
// oci.ErrNotRunning are understood too, and an error that already carries a
// gRPC status keeps it.
var (
	// ErrNotFound means the container or pod sandbox does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNotRunning means the container or pod sandbox exists but does not
	// run (or is not ready).
	ErrNotRunning = errors.New("not running")
)

// Backend is what the service needs from Arbor's container store and
// runtime. Its methods are called concurrently.
type Backend interface {
	// ContainerRunning returns nil if container id exists and runs,
	// ErrNotFound or ErrNotRunning if not.
	ContainerRunning(id string) error
	// PodNetNS returns the path of the network namespace of pod sandbox
	// id ("" for a pod on the host network), ErrNotFound for an unknown
	// pod and ErrNotRunning for a pod whose sandbox is not ready.
	PodNetNS(podID string) (string, error)
	// ExecIn runs opts.Cmd in container id, streaming as oci.ExecProcess
	// does, and returns its exit code. It must return soon after ctx ends
	// (killing the process). Stdin, when set, returns EOF when the client
	// closes it; the service closes it after ExecIn returns, which releases
	// any reader still blocked on it. A typical implementation is
	// rt.ExecProcess(ctx, id, opts).
	ExecIn(ctx context.Context, id string, opts oci.ExecOptions) (exitCode int, err error)
	// AttachTo connects opts to the running process of container id until
	// the container's output ends, the client detaches (closes stdin of a
	// container that is not StdinOnce) or ctx ends. AttachConmon does this
	// for conmon containers.
	AttachTo(ctx context.Context, id string, opts AttachOptions) error
}

// AttachOptions are the client's streams of an attach session.
type AttachOptions struct {
	// Stdin, if set, carries the client's input and returns EOF when the
	// client closes it. Close releases a pending Read, so an attach can
	// end its own reader before returning; the service closes it after
	// AttachTo returns in any case.
	Stdin io.ReadCloser
	// Stdout and Stderr receive the container's output; nil drops it.
	// With Tty all output goes to Stdout.
	Stdout, Stderr io.Writer
	// Tty says the container has a terminal.
	Tty bool
	// Resize delivers terminal size changes (Tty only); it is closed when
	// the client's resize stream ends, and may be nil.
	Resize <-chan oci.Size
}
