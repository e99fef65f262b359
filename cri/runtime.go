// Package cri implements the CRI RuntimeService and ImageService over
// Arbor's domain packages. Each RPC, or pair of RPCs, has its own file; the
// Boundary interceptors give every call its request ID, logging, panic
// recovery and error mapping, so handlers only do their work.
package cri

import (
	"log/slog"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeInfo is what the runtime reports about itself and its node.
type RuntimeInfo struct {
	Version  string
	CgroupV2 bool
	// Handlers are the configured runtime handler names, the default first.
	Handlers []string
	// NetworkReady reports whether pod networking works and why not.
	NetworkReady func() (bool, string)
	// Verbose returns extra information for Status with verbose set.
	Verbose func() map[string]string
}

// RuntimeServer is the CRI RuntimeService. Methods not built yet return
// codes.Unimplemented naming the method.
type RuntimeServer struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	info RuntimeInfo
	log  *slog.Logger
}

// NewRuntimeServer returns the RuntimeService.
func NewRuntimeServer(info RuntimeInfo, log *slog.Logger) *RuntimeServer {
	return &RuntimeServer{info: info, log: log}
}
