package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeName is the name Arbor reports to the kubelet.
const RuntimeName = "arbor"

// apiVersion is the CRI version Arbor serves.
const apiVersion = "v1"

// Version reports the runtime's name and version and the CRI version.
func (s *RuntimeServer) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       RuntimeName,
		RuntimeVersion:    s.info.Version,
		RuntimeApiVersion: apiVersion,
	}, nil
}
