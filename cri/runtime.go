// Package cri implements the CRI RuntimeService and ImageService over
// Arbor's domain packages. Each RPC, or pair of RPCs, has its own file; the
// Boundary interceptors give every call its request ID, logging, panic
// recovery and error mapping, so handlers only do their work.
package cri

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"

	"go.opentelemetry.io/otel/trace"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/events"
	"github.com/arbor-cri/arbor/fault"
	"github.com/arbor-cri/arbor/hooks"
	"github.com/arbor-cri/arbor/images"
	"github.com/arbor-cri/arbor/network"
	"github.com/arbor-cri/arbor/nri"
	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/store"
)

// RuntimeInfo is what the runtime reports about itself and its node.
type RuntimeInfo struct {
	Version string
	// Handlers are the configured runtime handler names, the default first.
	Handlers []string
	// Verbose returns extra information for Status with verbose set.
	Verbose func() map[string]string
}

// Deps are the parts the RuntimeService drives.
type Deps struct {
	Images  *images.Service
	OCI     *oci.Runtime
	Network *network.Manager
	Store   *store.Store
	Host    spec.Host
	Faults  *fault.Injector
	// RunRoot holds the pods' and containers' volatile folders.
	RunRoot string
	Stats   StatsSource
	Events  *events.ContainerBroker
	// PauseCommand overrides the pause image's entrypoint when set.
	PauseCommand []string
	// Hooks injects OCI hooks into container specs; nil injects none.
	Hooks *hooks.Manager
	// CDI resolves and injects CDI devices; nil refuses every request.
	CDI *CDI
	// Tracer makes a span for each step of RunPodSandbox and
	// CreateContainer; nil records none.
	Tracer trace.Tracer
	// NRI relays pod and container events to NRI plugins; nil relays
	// none.
	NRI *nri.Manager
}

// RuntimeServer is the CRI RuntimeService. Methods not built yet return
// codes.Unimplemented naming the method.
type RuntimeServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	info RuntimeInfo
	Deps
	log *slog.Logger

	streamer     Streamer
	rro          sync.Map // handler name → func() bool, see supportsRRO
	parking      parkingLot
	oomClampOnce sync.Once
}

// NewRuntimeServer returns the RuntimeService.
func NewRuntimeServer(info RuntimeInfo, deps Deps, log *slog.Logger) *RuntimeServer {
	deps.Tracer = orNoop(deps.Tracer)
	return &RuntimeServer{info: info, Deps: deps, log: log}
}

func (s *RuntimeServer) podDir(id string) string {
	return filepath.Join(s.RunRoot, "pods", id)
}

func (s *RuntimeServer) bundleDir(id string) string {
	return filepath.Join(s.RunRoot, "containers", id)
}

// point is a named fault point inside a call path (see package fault).
func (s *RuntimeServer) point(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	return s.Faults.Point(ctx, name)
}
