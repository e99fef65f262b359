// Package sandbox holds the plumbing of an Arbor pod sandbox that does not
// need a process: network, IPC and UTS namespaces pinned by bind mounts
// instead of an infra (pause) container, the pod's resolv.conf, hosts and
// hostname files, its /dev/shm tmpfs, pod sysctls and the pod cgroup
// parent folders.
//
// Arbor runs a pause container only when NeedsInfra says a pod needs one
// (a PID namespace shared by the pod); the caller then builds it with the
// oci and oci/spec packages. Everything here is synchronous and leaves
// nothing behind when it fails.
package sandbox
