package sandbox

import runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

// NeedsInfra reports whether a pod needs an infra (pause) process: when its
// containers share one PID namespace (NamespaceMode POD, which is also the
// protobuf default when no options are given) rather than the host's or
// one per container.
//
// Arbor otherwise holds a pod's network, IPC and UTS namespaces with bind
// mounts and no process at all (PinNamespaces), like CRI-O's
// drop_infra_ctr: pods start faster (no pause image, no runtime call, no
// conmon) and cost no memory or PID per pod. A namespace file keeps IPC,
// UTS and network namespaces alive, but a PID namespace needs a PID 1 for
// as long as it exists: when PID 1 exits the kernel kills every process in
// it and no new process can enter. A shared PID namespace must outlive each
// container, so a pause process that lives as long as the pod is its PID 1;
// it also reaps the pod's orphaned zombies. A pod user namespace needs no
// process either: PinNamespaces pins it with the namespaces it owns.
func NeedsInfra(cfg *runtimeapi.PodSandboxConfig) bool {
	opts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	return opts.GetPid() == runtimeapi.NamespaceMode_POD
}
