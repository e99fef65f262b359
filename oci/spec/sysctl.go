package spec

import (
	"fmt"
	"strings"
)

// sysctlNamespace names the namespace a namespaced sysctl belongs to.
type sysctlNamespace int

const (
	sysctlNotNamespaced sysctlNamespace = iota
	sysctlIPC
	sysctlNet
	sysctlUTS
)

// namespacedSysctls maps exact IPC and UTS sysctls to their namespace.
var namespacedSysctls = map[string]sysctlNamespace{
	"kernel.sem":             sysctlIPC,
	"kernel.shmall":          sysctlIPC,
	"kernel.shmmax":          sysctlIPC,
	"kernel.shmmni":          sysctlIPC,
	"kernel.shm_rmid_forced": sysctlIPC,
	"kernel.msgmax":          sysctlIPC,
	"kernel.msgmnb":          sysctlIPC,
	"kernel.msgmni":          sysctlIPC,
	"kernel.hostname":        sysctlUTS,
	"kernel.domainname":      sysctlUTS,
}

// namespaceOf classifies a sysctl by the namespace that scopes it.
func namespaceOf(name string) sysctlNamespace {
	if ns, ok := namespacedSysctls[name]; ok {
		return ns
	}
	switch {
	case strings.HasPrefix(name, "fs.mqueue."):
		return sysctlIPC
	case strings.HasPrefix(name, "net."):
		return sysctlNet
	}
	return sysctlNotNamespaced
}

// Sysctls validates pod sysctls and returns them with "/" separators
// normalised to ".". Only namespaced sysctls are accepted (the kubelet has
// already applied its safe/unsafe allow list), and none whose namespace is
// the host's: net.* and UTS sysctls need a pod network namespace, IPC
// sysctls a pod IPC namespace.
func Sysctls(in map[string]string, hostNetwork, hostIPC bool) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for name, value := range in {
		n := normalizeSysctl(name)
		switch namespaceOf(n) {
		case sysctlNotNamespaced:
			return nil, fmt.Errorf("sysctls: %q is not namespaced", name)
		case sysctlNet, sysctlUTS:
			if hostNetwork {
				return nil, fmt.Errorf("sysctls: %q not allowed with host network", name)
			}
		case sysctlIPC:
			if hostIPC {
				return nil, fmt.Errorf("sysctls: %q not allowed with host IPC", name)
			}
		}
		out[n] = value
	}
	return out, nil
}
