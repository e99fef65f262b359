package cri

import (
	"context"
	"encoding/json"
	"iter"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/store"
)

// PodSandboxStatus reports a pod's state, addresses and namespaces;
// verbose adds its record as JSON.
func (s *RuntimeServer) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	e, err := s.Store.Pods.Lookup(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	p := e.Get()
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatus(&p)}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"pid": p.InfraPid, "infraContainerID": p.InfraID, "namespaces": p.NS, "dir": p.Dir,
			"cgroups": p.Cgroups, "runtimeHandler": p.Handler, "config": p.Config,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func podStatus(p *store.Pod) *runtimeapi.PodSandboxStatus {
	st := &runtimeapi.PodSandboxStatus{
		Id: p.ID, Metadata: p.Config.GetMetadata(), State: p.State, CreatedAt: p.CreatedAt,
		Labels: p.Config.GetLabels(), Annotations: p.Config.GetAnnotations(), RuntimeHandler: p.Handler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: p.Config.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
		Network: &runtimeapi.PodSandboxNetworkStatus{},
	}
	if len(p.IPs) > 0 {
		st.Network.Ip = p.IPs[0]
		for _, ip := range p.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

// ListPodSandbox lists pods, filtered by ID (or prefix), state and labels.
func (s *RuntimeServer) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: slices.Collect(s.pods(req.GetFilter()))}, nil
}

// pods yields the pods ListPodSandbox and StreamPodSandboxes report for f.
func (s *RuntimeServer) pods(f *runtimeapi.PodSandboxFilter) iter.Seq[*runtimeapi.PodSandbox] {
	return func(yield func(*runtimeapi.PodSandbox) bool) {
		for _, e := range s.Store.Pods.All() {
			p := e.Get()
			if f != nil && !(strings.HasPrefix(p.ID, f.GetId()) &&
				(f.GetState() == nil || f.GetState().GetState() == p.State) &&
				labelsMatch(p.Config.GetLabels(), f.GetLabelSelector())) {
				continue
			}
			if !yield(&runtimeapi.PodSandbox{
				Id: p.ID, Metadata: p.Config.GetMetadata(), State: p.State, CreatedAt: p.CreatedAt,
				Labels: p.Config.GetLabels(), Annotations: p.Config.GetAnnotations(), RuntimeHandler: p.Handler,
			}) {
				return
			}
		}
	}
}
