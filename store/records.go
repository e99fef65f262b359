package store

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Phase marks a record written ahead of a create or a remove, so that a
// daemon that died half-way finds what to undo or finish. Everything an
// object makes is named by its ID, so the record is all restore needs.
type Phase string

// The phases of a record.
const (
	PhaseReady    Phase = ""         // created; the record is final
	PhaseCreating Phase = "creating" // a create is under way; restore undoes it
	PhaseRemoving Phase = "removing" // a remove is under way; restore finishes it
)

// Namespaces are the pinned namespace files of a pod; empty means the
// host's.
type Namespaces struct {
	Net  string `json:"net,omitempty"`
	IPC  string `json:"ipc,omitempty"`
	UTS  string `json:"uts,omitempty"`
	PID  string `json:"pid,omitempty"`  // /proc/<infra pid>/ns/pid when the pod shares one
	User string `json:"user,omitempty"` // pod user namespace; empty means the host's
	Dir  string `json:"dir,omitempty"`  // pin folder of IPC, UTS and user
}

// Pod is the durable record of a pod sandbox.
type Pod struct {
	ID        string                              `json:"id"`
	Name      string                              `json:"name"` // reserved name
	Config    *runtimeapi.PodSandboxConfig        `json:"config"`
	Handler   string                              `json:"handler"`
	CreatedAt int64                               `json:"created_at"`
	State     runtimeapi.PodSandboxState          `json:"state"`
	Dir       string                              `json:"dir"` // volatile pod folder: resolv.conf, hosts, shm
	NS        Namespaces                          `json:"namespaces"`
	IPs       []string                            `json:"ips,omitempty"`
	Network   bool                                `json:"network"` // CNI ADD done and not yet undone
	Cgroups   []string                            `json:"cgroups,omitempty"`
	InfraID   string                              `json:"infra_id,omitempty"`
	InfraPid  int                                 `json:"infra_pid,omitempty"`
	PortMaps  []*runtimeapi.PortMapping           `json:"port_mappings,omitempty"`
	Phase     Phase                               `json:"phase,omitempty"`
	Resources *runtimeapi.LinuxContainerResources `json:"resources,omitempty"`
}

// Container is the durable record of a container.
type Container struct {
	ID         string                              `json:"id"`
	PodID      string                              `json:"pod_id"`
	Name       string                              `json:"name"` // reserved name
	Config     *runtimeapi.ContainerConfig         `json:"config"`
	Image      string                              `json:"image"`     // as the request named it
	ImageRef   string                              `json:"image_ref"` // image ID
	ImageName  string                              `json:"image_name"`
	RepoDigest string                              `json:"repo_digest,omitempty"` // "repo@sha256:...", if the image has one
	Handler    string                              `json:"handler"`
	CreatedAt  int64                               `json:"created_at"`
	StartedAt  int64                               `json:"started_at,omitempty"`
	FinishedAt int64                               `json:"finished_at,omitempty"`
	ExitCode   int32                               `json:"exit_code"`
	Reason     string                              `json:"reason,omitempty"`
	Message    string                              `json:"message,omitempty"`
	State      runtimeapi.ContainerState           `json:"state"`
	Pid        int                                 `json:"pid,omitempty"`
	LogPath    string                              `json:"log_path,omitempty"`
	BundleDir  string                              `json:"bundle_dir"`
	Rootfs     string                              `json:"rootfs"`
	CgroupPath string                              `json:"cgroup_path"`
	StopSignal int                                 `json:"stop_signal"`
	User       *runtimeapi.ContainerUser           `json:"user,omitempty"`
	Phase      Phase                               `json:"phase,omitempty"`
	Resources  *runtimeapi.LinuxContainerResources `json:"resources,omitempty"`
}

// DigestedImage is the CRI image_ref of the container: its repo digest,
// else (a local image, or a record older than the field) its image ID.
func (c *Container) DigestedImage() string {
	if c.RepoDigest != "" {
		return c.RepoDigest
	}
	return c.ImageRef
}
