package spec

import (
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// NamespacePaths names the /proc/<pid>/ns/* (or bind-mounted) namespace
// files a container joins. An empty path means "not provided".
type NamespacePaths struct {
	// Network is the pod network namespace (unused with host network).
	Network string
	// IPC is the pod IPC namespace (unused with host IPC).
	IPC string
	// UTS is the pod UTS namespace (unused with host network).
	UTS string
	// PID is the pod's shared PID namespace, used with NamespaceMode POD.
	PID string
	// TargetPID is the target container's PID namespace, used with
	// NamespaceMode TARGET.
	TargetPID string
	// User is the pod user namespace, used when the pod has one.
	User string
}

// PodFiles names host files and directories the pod provides to its
// containers. Empty fields are not mounted.
type PodFiles struct {
	// ShmPath is the pod's /dev/shm directory (a tmpfs the caller mounted).
	// Empty means a private tmpfs per container.
	ShmPath string
	// HostsPath is the pod's /etc/hosts.
	HostsPath string
	// ResolvConfPath is the pod's /etc/resolv.conf.
	ResolvConfPath string
	// HostnamePath is the pod's /etc/hostname.
	HostnamePath string
}

// ContainerInput is everything Generate needs to build a container spec.
type ContainerInput struct {
	// ID is the container ID; it names the cgroup ("arbor-<id>").
	ID string
	// SandboxID is the ID of the pod sandbox the container belongs to.
	SandboxID string
	// Config is the CRI request's container config (required).
	Config *runtimeapi.ContainerConfig
	// Sandbox is the pod's CRI sandbox config (required).
	Sandbox *runtimeapi.PodSandboxConfig
	// Image is the image's OCI config; nil means an empty config.
	Image *imagespec.ImageConfig
	// ImageName is the image reference, recorded in an annotation.
	ImageName string
	// RootfsPath is the mounted container root filesystem (required).
	RootfsPath string
	// CgroupParent overrides Sandbox.Linux.CgroupParent when not empty.
	CgroupParent string
	// Namespaces are the pod namespaces to join.
	Namespaces NamespacePaths
	// Files are the pod's shared files.
	Files PodFiles
	// ImageVolumes maps image volume destinations (ImageConfig.Volumes) to
	// host directories the caller prepared; volumes without an entry and
	// volumes a CRI mount covers are skipped.
	ImageVolumes map[string]string
	// PidsLimit caps the number of processes; 0 leaves it unset.
	PidsLimit int64
	// Host holds the node facts (required).
	Host Host
}

// SandboxInput is everything GenerateSandbox needs to build a pause spec.
type SandboxInput struct {
	// ID is the sandbox ID; it names the cgroup ("arbor-<id>").
	ID string
	// Config is the CRI RunPodSandbox config (required).
	Config *runtimeapi.PodSandboxConfig
	// Image is the pause image's OCI config; its Entrypoint and Cmd are
	// used when PauseCommand is empty.
	Image *imagespec.ImageConfig
	// PauseCommand overrides the pause process argv.
	PauseCommand []string
	// RootfsPath is the mounted pause root filesystem (required).
	RootfsPath string
	// Namespaces: Network (from CNI) and User are joined when set; IPC,
	// UTS and PID are always created fresh unless the pod uses the host's.
	Namespaces NamespacePaths
	// Files are the pod's shared files.
	Files PodFiles
	// Host holds the node facts (required).
	Host Host
}

// EffectiveUser is the identity the container's first process starts with.
type EffectiveUser struct {
	UID uint32
	GID uint32
	// AdditionalGIDs includes the primary GID first, as setgroups gets it.
	AdditionalGIDs []uint32
}

// ToCRI converts the user for ContainerStatus.
func (u EffectiveUser) ToCRI() *runtimeapi.ContainerUser {
	groups := make([]int64, len(u.AdditionalGIDs))
	for i, g := range u.AdditionalGIDs {
		groups[i] = int64(g)
	}
	return &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
		Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups,
	}}
}

// Report tells the caller what Generate decided beyond the spec itself.
type Report struct {
	// User is the effective user of the container process.
	User EffectiveUser
	// OOMScoreAdjClamped is set when a negative oom_score_adj was requested
	// but the host cannot set one; the spec then carries 0. Log it once.
	OOMScoreAdjClamped bool
	// RequestedOOMScoreAdj is the score the request asked for.
	RequestedOOMScoreAdj int
	// StopSignal is the signal that stops the container (CRI, then image,
	// then SIGTERM), as a number.
	StopSignal int
}

// EffectiveUserOf recovers the effective user from a generated spec, e.g.
// when a restarted daemon reloads config.json for ContainerStatus.
func EffectiveUserOf(s *specs.Spec) EffectiveUser {
	if s == nil || s.Process == nil {
		return EffectiveUser{}
	}
	u := s.Process.User
	return EffectiveUser{UID: u.UID, GID: u.GID, AdditionalGIDs: append([]uint32(nil), u.AdditionalGids...)}
}
