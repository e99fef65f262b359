package spec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultMaskedPaths are hidden from unprivileged containers.
var DefaultMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug", "/proc/scsi", "/proc/interrupts",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

// DefaultReadonlyPaths are read-only in unprivileged containers.
var DefaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// defaultShmSize is the size of a private /dev/shm.
const defaultShmSize = "size=65536k"

// DefaultMounts returns the kernel filesystems every container gets:
// /proc, /dev, /dev/pts, /dev/shm (the pod's shm path, the host's with
// host IPC, else a private tmpfs), /dev/mqueue, /sys and /sys/fs/cgroup,
// the last two read-only unless privileged.
func DefaultMounts(shmPath string, hostIPC, privileged bool) []specs.Mount {
	ro := "ro"
	if privileged {
		ro = "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		shmMount(shmPath, hostIPC),
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", ro}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", ro}},
	}
}

// shmMount picks the /dev/shm mount.
func shmMount(shmPath string, hostIPC bool) specs.Mount {
	if hostIPC {
		shmPath = "/dev/shm"
	}
	if shmPath == "" {
		return specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", defaultShmSize}}
	}
	return specs.Mount{Destination: "/dev/shm", Type: "bind", Source: shmPath,
		Options: []string{"rbind", "rprivate", "nosuid", "noexec", "nodev", "rw"}}
}

// podFileMounts bind-mounts the pod's hosts, resolv.conf and hostname
// files; readonly makes them read-only (as with a read-only rootfs).
func podFileMounts(f PodFiles, readonly bool) []specs.Mount {
	mode := "rw"
	if readonly {
		mode = "ro"
	}
	var out []specs.Mount
	for _, m := range [][2]string{{"/etc/hosts", f.HostsPath}, {"/etc/resolv.conf", f.ResolvConfPath}, {"/etc/hostname", f.HostnamePath}} {
		if m[1] != "" {
			out = append(out, specs.Mount{Destination: m[0], Type: "bind", Source: m[1],
				Options: []string{"rbind", "rprivate", "nosuid", "nodev", "noexec", mode}})
		}
	}
	return out
}

// CRIMounts converts the request's bind mounts. Host paths must exist
// (symlinks are resolved); image mounts must have been resolved by the
// caller into HostPath. Propagation maps PRIVATE to rprivate,
// HOST_TO_CONTAINER to rslave and BIDIRECTIONAL to rshared; recursive
// read-only adds "rro" and requires readonly and private propagation.
// SELinux relabelling is ignored. It also returns the rootfs propagation
// the mounts need ("" when private suffices).
func CRIMounts(mounts []*runtimeapi.Mount) ([]specs.Mount, string, error) {
	var out []specs.Mount
	rootProp := ""
	for i, m := range mounts {
		om, prop, err := criMount(m, fmt.Sprintf("mounts[%d]", i))
		if err != nil {
			return nil, "", err
		}
		if prop == "rshared" || (prop == "rslave" && rootProp == "") {
			rootProp = prop
		}
		out = append(out, om)
	}
	return out, rootProp, nil
}

// criMount converts one CRI mount; field names it in errors.
func criMount(m *runtimeapi.Mount, field string) (specs.Mount, string, error) {
	if !path.IsAbs(m.GetContainerPath()) {
		return specs.Mount{}, "", fmt.Errorf("%s.container_path %q: not an absolute path", field, m.GetContainerPath())
	}
	src, err := mountSource(m, field)
	if err != nil {
		return specs.Mount{}, "", err
	}
	prop, err := propagationOption(m.GetPropagation(), field)
	if err != nil {
		return specs.Mount{}, "", err
	}
	readonly := m.GetReadonly() || m.GetImage() != nil
	opts := []string{"rbind", prop}
	if readonly {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	if m.GetRecursiveReadOnly() {
		if !readonly || prop != "rprivate" {
			return specs.Mount{}, "", fmt.Errorf("%s.recursive_read_only: needs readonly and private propagation", field)
		}
		opts = append(opts, "rro")
	}
	opts = append(opts, m.GetMountOptions()...)
	return specs.Mount{
		Destination: path.Clean(m.GetContainerPath()), Type: "bind", Source: src, Options: opts,
		UIDMappings: IDMappings(m.GetUidMappings()), GIDMappings: IDMappings(m.GetGidMappings()),
	}, prop, nil
}

// mountSource resolves and checks the host side of a mount.
func mountSource(m *runtimeapi.Mount, field string) (string, error) {
	hp := m.GetHostPath()
	if hp == "" {
		if m.GetImage() != nil {
			return "", fmt.Errorf("%s.image %q: image mount not resolved to a host path", field, m.GetImage().GetImage())
		}
		return "", fmt.Errorf("%s.host_path: empty", field)
	}
	if !filepath.IsAbs(hp) {
		return "", fmt.Errorf("%s.host_path %q: not an absolute path", field, hp)
	}
	resolved, err := filepath.EvalSymlinks(hp)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s.host_path %q: does not exist: %w", field, hp, err)
	}
	if err != nil {
		return "", fmt.Errorf("%s.host_path %q: resolving: %w", field, hp, err)
	}
	return resolved, nil
}

// propagationOption maps a CRI propagation mode to a mount option.
func propagationOption(p runtimeapi.MountPropagation, field string) (string, error) {
	switch p {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return "rprivate", nil
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		return "rslave", nil
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		return "rshared", nil
	}
	return "", fmt.Errorf("%s.propagation: unknown mode %v", field, p)
}

// imageVolumeMounts bind-mounts caller-prepared image volume directories.
func imageVolumeMounts(volumes map[string]struct{}, sources map[string]string) []specs.Mount {
	var out []specs.Mount
	for dest := range volumes {
		src, ok := sources[dest]
		if !ok || src == "" {
			continue
		}
		out = append(out, specs.Mount{Destination: path.Clean(dest), Type: "bind", Source: src,
			Options: []string{"rbind", "rprivate", "rw"}})
	}
	return out
}

// mergeMounts layers mount lists: a mount in a later list replaces any
// earlier mount at the same destination. The result is sorted so parents are
// mounted before children, stable within one depth.
func mergeMounts(layers ...[]specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, layer := range layers {
		for _, m := range layer {
			out = slices.DeleteFunc(out, func(o specs.Mount) bool { return o.Destination == m.Destination })
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Destination) < depth(out[j].Destination) })
	return out
}

// depth counts the path components of a destination.
func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// maskedAndReadonly picks the masked and read-only paths: none when
// privileged, the CRI lists when non-empty, otherwise the defaults.
func maskedAndReadonly(sc *runtimeapi.LinuxContainerSecurityContext) (masked, readonly []string) {
	if sc.GetPrivileged() {
		return nil, nil
	}
	masked, readonly = DefaultMaskedPaths, DefaultReadonlyPaths
	if len(sc.GetMaskedPaths()) > 0 {
		masked = sc.GetMaskedPaths()
	}
	if len(sc.GetReadonlyPaths()) > 0 {
		readonly = sc.GetReadonlyPaths()
	}
	return slices.Clone(masked), slices.Clone(readonly)
}
