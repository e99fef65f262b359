package spec

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Annotation keys written into every spec, as the containerd CRI plugin
// names them, so monitoring tools that read config.json recognise them.
const (
	// AnnotationContainerType is "container" or "sandbox".
	AnnotationContainerType = "io.kubernetes.cri.container-type"
	// AnnotationSandboxID is the pod sandbox ID.
	AnnotationSandboxID = "io.kubernetes.cri.sandbox-id"
	// AnnotationContainerName is the CRI container name.
	AnnotationContainerName = "io.kubernetes.cri.container-name"
	// AnnotationImageName is the image reference the container runs.
	AnnotationImageName = "io.kubernetes.cri.image-name"
	// AnnotationSandboxName is the pod name.
	AnnotationSandboxName = "io.kubernetes.cri.sandbox-name"
	// AnnotationSandboxNamespace is the pod's Kubernetes namespace.
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	// AnnotationSandboxUID is the pod UID.
	AnnotationSandboxUID = "io.kubernetes.cri.sandbox-uid"
	// AnnotationSandboxLogDir is the pod log directory (sandboxes only).
	AnnotationSandboxLogDir = "io.kubernetes.cri.sandbox-log-directory"
	// AnnotationStopSignal is the stop signal number (containers only).
	AnnotationStopSignal = "io.kubernetes.cri.stop-signal"
	// ContainerTypeContainer marks an application container.
	ContainerTypeContainer = "container"
	// ContainerTypeSandbox marks a pause container.
	ContainerTypeSandbox = "sandbox"
)

// containerAnnotations copies the kubelet's annotations and adds ours,
// which win on conflict.
func containerAnnotations(in ContainerInput) map[string]string {
	out := copyMap(in.Config.GetAnnotations())
	md := in.Sandbox.GetMetadata()
	out[AnnotationContainerType] = ContainerTypeContainer
	out[AnnotationSandboxID] = in.SandboxID
	out[AnnotationContainerName] = in.Config.GetMetadata().GetName()
	out[AnnotationImageName] = in.ImageName
	out[AnnotationSandboxName] = md.GetName()
	out[AnnotationSandboxNamespace] = md.GetNamespace()
	out[AnnotationSandboxUID] = md.GetUid()
	return out
}

// sandboxAnnotations copies the pod's annotations and adds ours.
func sandboxAnnotations(id string, cfg *runtimeapi.PodSandboxConfig) map[string]string {
	out := copyMap(cfg.GetAnnotations())
	md := cfg.GetMetadata()
	out[AnnotationContainerType] = ContainerTypeSandbox
	out[AnnotationSandboxID] = id
	out[AnnotationSandboxName] = md.GetName()
	out[AnnotationSandboxNamespace] = md.GetNamespace()
	out[AnnotationSandboxUID] = md.GetUid()
	out[AnnotationSandboxLogDir] = cfg.GetLogDirectory()
	return out
}

// copyMap returns a non-nil copy of m.
func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+8)
	for k, v := range m {
		out[k] = v
	}
	return out
}
