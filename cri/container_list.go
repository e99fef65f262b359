package cri

import (
	"context"
	"iter"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, filtered by ID (or ID prefix), state,
// pod sandbox ID (or prefix) and labels. It takes no operation lock, so a
// stuck stop never blocks it.
func (s *RuntimeServer) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: slices.Collect(s.containers(req.GetFilter()))}, nil
}

// containers yields the containers ListContainers and StreamContainers
// report for f.
func (s *RuntimeServer) containers(f *runtimeapi.ContainerFilter) iter.Seq[*runtimeapi.Container] {
	return func(yield func(*runtimeapi.Container) bool) {
		for _, e := range s.Store.Containers.All() {
			c := e.Get()
			if f != nil && !(strings.HasPrefix(c.ID, f.GetId()) &&
				strings.HasPrefix(c.PodID, f.GetPodSandboxId()) &&
				(f.GetState() == nil || f.GetState().GetState() == c.State) &&
				labelsMatch(c.Config.GetLabels(), f.GetLabelSelector())) {
				continue
			}
			// image_ref stays the image ID here, as in containerd: the
			// kubelet's image garbage collector matches it with ListImages.
			// ContainerStatus gives the digested reference.
			if !yield(&runtimeapi.Container{
				Id: c.ID, PodSandboxId: c.PodID, Metadata: c.Config.GetMetadata(),
				Image:    &runtimeapi.ImageSpec{Image: c.ImageName, UserSpecifiedImage: c.Image},
				ImageRef: c.ImageRef, ImageId: c.ImageRef, State: c.State, CreatedAt: c.CreatedAt,
				Labels: c.Config.GetLabels(), Annotations: c.Config.GetAnnotations(),
			}) {
				return
			}
		}
	}
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
