// Package spec turns CRI container and pod sandbox requests into OCI runtime
// specs (config.json) for runc.
//
// Generate builds the spec of an application container from its CRI
// ContainerConfig, the pod's PodSandboxConfig, the image's OCI config, the
// rootfs path and the pod's namespace paths. GenerateSandbox builds the spec
// of the pod's infra (pause) container. Both consult a Host, the facts about
// the node the daemon detected once at start (DetectHost): its capability
// bounding set, cgroup layout and controllers, whether a negative
// oom_score_adj can be set, and whether seccomp and AppArmor are available.
//
// The package reads the filesystem (the image rootfs /etc/passwd and
// /etc/group, host mount sources and devices, seccomp profiles) but never
// changes it: callers create shm mounts, hosts files and network namespaces
// and pass their paths in.
package spec
