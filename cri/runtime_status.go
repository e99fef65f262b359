package cri

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status reports whether the runtime and its network are ready, the
// features of each runtime handler and, when verbose, extra information as
// JSON strings.
func (s *RuntimeServer) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	netOK, netWhy := s.Network.Ready()
	netCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: netOK}
	if !netOK {
		netCond.Reason, netCond.Message = "NetworkPluginNotReady", netWhy
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			netCond,
		}},
		RuntimeHandlers: s.handlers(ctx),
		// The policy is applied when the container's user is resolved
		// (spec.ResolveUser).
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() && s.info.Verbose != nil {
		resp.Info = map[string]string{}
		for k, v := range s.info.Verbose() {
			resp.Info[k] = v
		}
	}
	return resp, nil
}

// handlers lists each handler with the features it really supports:
// recursive read-only mounts when the handler's runtime binary says it
// knows the "rro" mount option, and pod user namespaces when this kernel
// lets the daemon make one (the runtime only joins it).
func (s *RuntimeServer) handlers(ctx context.Context) []*runtimeapi.RuntimeHandler {
	userNS := logUserNSProbe(ctx)
	out := make([]*runtimeapi.RuntimeHandler, 0, len(s.info.Handlers)+1)
	for i, name := range s.info.Handlers {
		features := &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: s.supportsRRO(name), UserNamespaces: userNS}
		out = append(out, &runtimeapi.RuntimeHandler{Name: name, Features: features})
		if i == 0 {
			// The default handler is also listed under the empty name.
			out = append(out, &runtimeapi.RuntimeHandler{Name: "", Features: features})
		}
	}
	return out
}

// supportsRRO asks a handler's runtime binary, once, whether it supports
// the "rro" mount option (`runc features`, OCI runtime features).
func (s *RuntimeServer) supportsRRO(handler string) bool {
	v, _ := s.rro.LoadOrStore(handler, sync.OnceValue(func() bool {
		if s.OCI == nil {
			return false
		}
		h, err := s.OCI.Handler(handler)
		if err != nil {
			return false
		}
		out, err := exec.Command(h.RuntimePath, "features").Output()
		if err != nil {
			return false
		}
		var f struct {
			MountOptions []string `json:"mountOptions"`
		}
		return json.Unmarshal(out, &f) == nil && slices.Contains(f.MountOptions, "rro")
	}))
	return v.(func() bool)()
}
