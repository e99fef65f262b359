package cri

import (
	"context"

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
		RuntimeHandlers: s.handlers(),
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

// handlers lists each handler with the features it really supports. None
// is claimed until it is built and tested.
func (s *RuntimeServer) handlers() []*runtimeapi.RuntimeHandler {
	out := make([]*runtimeapi.RuntimeHandler, 0, len(s.info.Handlers)+1)
	for i, name := range s.info.Handlers {
		features := &runtimeapi.RuntimeHandlerFeatures{}
		out = append(out, &runtimeapi.RuntimeHandler{Name: name, Features: features})
		if i == 0 {
			// The default handler is also listed under the empty name.
			out = append(out, &runtimeapi.RuntimeHandler{Name: "", Features: features})
		}
	}
	return out
}
