package sandbox

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/arbor-cri/arbor/internal/nsthread"
	"github.com/arbor-cri/arbor/oci/spec"
)

// procSys is where sysctls are written.
const procSys = "/proc/sys"

// ValidateSysctls accepts only namespaced pod sysctls whose namespace the
// pod does not share with the host: net.* (and kernel.hostname,
// kernel.domainname) need a pod network namespace; kernel.shm*, kernel.msg*,
// kernel.sem and fs.mqueue.* a pod IPC namespace. The error names the
// sysctl. Names may use "/" separators.
func ValidateSysctls(sysctls map[string]string, hostNetwork, hostIPC bool) error {
	norm, err := spec.Sysctls(sysctls, hostNetwork, hostIPC)
	if err != nil {
		return err
	}
	for name := range norm {
		if _, err := sysctlPath(name); err != nil {
			return err
		}
	}
	return nil
}

// ApplySysctls writes pod sysctls inside the pinned namespaces of a pod
// without an infra container: net.* in ns.Net, UTS ones in ns.UTS and IPC
// ones in ns.IPC, each from a throwaway thread that joined the namespace.
// The host's values are untouched. Call it after the network is set up
// when a sysctl names a pod interface. A sysctl whose namespace ns lacks
// (the host's) is refused before anything is written; a write that fails
// part way leaves earlier values set (the pod is torn down anyway).
func ApplySysctls(ns Namespaces, sysctls map[string]string) error {
	norm, err := spec.Sysctls(sysctls, ns.Net == "", ns.IPC == "")
	if err != nil {
		return err
	}
	groups := make(map[nsKind]map[string]string)
	for name, value := range norm {
		k := sysctlKind(name)
		if groups[k] == nil {
			groups[k] = make(map[string]string)
		}
		groups[k][name] = value
	}
	for _, k := range pinnedKinds {
		if err := applyIn(ns.pathOf(k), k, groups[k]); err != nil {
			return err
		}
	}
	return nil
}

// pathOf returns the namespace file of kind k.
func (n Namespaces) pathOf(k nsKind) string {
	switch k {
	case kindNet:
		return n.Net
	case kindIPC:
		return n.IPC
	default:
		return n.UTS
	}
}

// sysctlKind names the namespace of a sysctl spec.Sysctls accepted.
func sysctlKind(name string) nsKind {
	switch {
	case strings.HasPrefix(name, "net."):
		return kindNet
	case name == "kernel.hostname", name == "kernel.domainname":
		return kindUTS
	default:
		return kindIPC
	}
}

// applyIn writes values inside the namespace pinned at nsPath.
func applyIn(nsPath string, k nsKind, values map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(values))
	if nsPath == "" {
		return fmt.Errorf("applying sysctl %q: pod has no %s namespace of its own", names[0], k.name)
	}
	return nsthread.Run(func() error {
		if err := joinNamespace(nsPath, k.flag); err != nil {
			return fmt.Errorf("applying sysctls: %w", err)
		}
		for _, n := range names {
			if err := writeSysctl(n, values[n]); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeSysctl writes one sysctl through /proc/sys.
func writeSysctl(name, value string) error {
	p, err := sysctlPath(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("applying sysctl %q: %w", name, err)
	}
	return nil
}

// sysctlPath maps a dotted sysctl name to its /proc/sys file; a "/" inside
// a component stands for a literal "." (an interface name like eth0.1).
func sysctlPath(name string) (string, error) {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		p = strings.ReplaceAll(p, "/", ".")
		if p == "" || p == "." || p == ".." {
			return "", fmt.Errorf("sysctl %q: invalid name", name)
		}
		parts[i] = p
	}
	return filepath.Join(append([]string{procSys}, parts...)...), nil
}
